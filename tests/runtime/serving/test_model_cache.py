"""The multi-model worker's LRU cache under a memory bound, and TargetModel name safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyard.runtime.failures import ClientError
from modelyard.runtime.serving import multimodel
from modelyard.runtime.serving.model_cache import ModelCache
from modelyard.runtime.serving.model_downloads import ModelFetcher
from modelyard.runtime.serving.multimodel import MEMORY_VARIABLE, worker_settings
from modelyard.runtime.serving.plan import ServePlan
from modelyard.runtime.serving.targets import (
    InvalidTargetModel,
    check_target_model,
    decode_target_model,
    local_name,
)


def test_least_recently_used_goes_first() -> None:
    unloaded: list[tuple[str, str]] = []
    cache: ModelCache[str] = ModelCache(100, lambda name, value: unloaded.append((name, value)))
    assert cache.put("a", "A", 40) == []
    assert cache.put("b", "B", 40) == []
    assert cache.get("a") == "A"  # now b is the least recently used
    assert cache.put("c", "C", 40) == ["b"]
    assert list(cache.sizes()) == ["a", "c"] and cache.total == 80
    assert unloaded == [("b", "B")]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 0, 1)
    assert cache.get("b") is None and cache.stats.misses == 1


def test_several_entries_leave_for_a_large_one_but_the_newest_always_stays() -> None:
    cache: ModelCache[int] = ModelCache(100)
    for name in "abcd":
        cache.put(name, 0, 25)
    assert cache.put("big", 0, 60) == ["a", "b", "c"]
    assert list(cache.sizes()) == ["d", "big"] and cache.total == 85
    assert cache.put("huge", 0, 500) == ["d", "big"]  # larger than the bound: served alone
    assert list(cache.sizes()) == ["huge"] and cache.total == 500
    assert cache.put("next", 0, 1) == ["huge"]


def test_make_room_evicts_before_a_load() -> None:
    cache: ModelCache[int] = ModelCache(100)
    cache.put("a", 0, 50)
    cache.put("b", 0, 30)
    assert cache.make_room(20) == []  # 100 fits exactly
    assert cache.make_room(21) == ["a"]
    assert cache.make_room(1000) == ["b"] and len(cache) == 0


def test_replacing_and_removing_keep_the_total() -> None:
    unloaded: list[str] = []
    cache: ModelCache[int] = ModelCache(100, lambda name, _: unloaded.append(name))
    cache.put("a", 1, 30)
    cache.put("a", 2, 50)
    assert cache.total == 50 and cache.peek("a") == 2 and unloaded == ["a"]
    assert cache.remove("a") and not cache.remove("a")
    assert cache.total == 0 and "a" not in cache and unloaded == ["a", "a"]
    with pytest.raises(ValueError):
        cache.put("a", 0, -1)


@pytest.mark.parametrize("name", [
    "model.tar.gz", "team/model-b.tar.gz", "a b/c.tar.gz", "vers..ion.tar.gz", "ünï.tar.gz",
])
def test_keys_below_the_prefix_are_accepted(name: str) -> None:
    assert check_target_model(name) == name


@pytest.mark.parametrize("name", [
    "", "../model.tar.gz", "a/../../model.tar.gz", "a/..", "./model.tar.gz", "/etc/passwd",
    "//host/model.tar.gz", "a//b.tar.gz", "a/", "a\x00b", "new\nline", "x" * 1025,
])
def test_keys_that_leave_the_prefix_or_are_malformed_are_refused(name: str) -> None:
    with pytest.raises(InvalidTargetModel):
        check_target_model(name)


def test_header_values_are_utf8() -> None:
    assert decode_target_model("ünï.tar.gz".encode()) == "ünï.tar.gz"
    with pytest.raises(InvalidTargetModel):
        decode_target_model(b"\xff\xfe")


def test_local_names_are_safe_and_distinct() -> None:
    names = ["a/b.tar.gz", "a_b.tar.gz", "a b.tar.gz", "..tar.gz", "x" * 1024]
    local = [local_name(n) for n in names]
    assert len(set(local)) == len(names)
    for item in local:
        assert "/" not in item and item not in (".", "..") and len(item) <= 100
        assert item.replace(".", "").replace("_", "").replace("-", "").isalnum()


def test_target_uris_stay_below_the_prefix(tmp_path: Path) -> None:
    def no_store() -> Any:
        raise AssertionError("uri() needs no artifact store")

    def uri(prefix: str, name: str) -> str:
        return ModelFetcher(prefix, tmp_path, no_store).uri(name)

    assert uri("s3://bucket/models/", "team/a.tar.gz") == "s3://bucket/models/team/a.tar.gz"
    assert uri("s3://bucket/models", "a.tar.gz") == "s3://bucket/models/a.tar.gz"
    assert uri("file:///data/models/", "a b.tar.gz") == "file:///data/models/a%20b.tar.gz"
    assert uri("/data/models", "a.tar.gz") == "/data/models/a.tar.gz"


def plan(**fields: object) -> ServePlan:
    values: dict[str, object] = dict(
        endpoint_name="ep", variant_name="v", instance_id="i-1", model_name="m",
        framework="xgboost", model_data_url="s3://bucket/models/", port=1, multi_model=True,
    )
    values.update(fields)
    return ServePlan(**values)  # type: ignore[arg-type]


def test_the_memory_bound_is_shared_among_workers_and_only_lowered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multimodel, "_machine_memory_mb", lambda: 16384)
    settings = worker_settings(plan(memory_mb=8192, workers=2), {}, "/opt/ml/models")
    assert settings.memory_bytes == 8192 * 3 // 4 * 2**20 // 2
    lowered = worker_settings(plan(memory_mb=8192, workers=2), {MEMORY_VARIABLE: "100"}, "/m")
    assert lowered.memory_bytes == 50 * 2**20
    raised = worker_settings(plan(memory_mb=1024, workers=1), {MEMORY_VARIABLE: "99999"}, "/m")
    assert raised.memory_bytes == 768 * 2**20
    fractional = worker_settings(plan(memory_mb=1024), {MEMORY_VARIABLE: "0.5"}, "/m")
    assert fractional.memory_bytes == 2**19
    assert worker_settings(plan(model_cache=False), {}, "/m").cache_enabled is False
    small_machine = worker_settings(plan(memory_mb=65536), {}, "/m")  # never more than there is
    assert small_machine.memory_bytes == 16384 * 3 // 4 * 2**20
    for bad in ("0", "-1", "lots", "nan"):
        with pytest.raises(ClientError, match=MEMORY_VARIABLE):
            worker_settings(plan(), {MEMORY_VARIABLE: bad}, "/m")
