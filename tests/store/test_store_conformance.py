"""The MetadataStore contract, run on every backend (see conftest.py for the backends)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from modelyard.core.errors import StaleRecord, ValidationError
from modelyard.store import (
    DuplicateRecord,
    Link,
    MetadataStore,
    MetricPoint,
    Query,
    Record,
    RecordNotFound,
    SqlMetadataStore,
    open_store,
)

HEAD = "0002"  # the newest migration revision


def make_record(
    name: str,
    *,
    kind: str = "TrainingJob",
    status: str = "InProgress",
    created: float = 1000.0,
    modified: float | None = None,
    spec: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Record:
    """A record whose ARN is derived from kind and name, as the API builds them."""
    return Record(
        kind=kind,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:000000000000:{kind.lower()}/{name}",
        status=status,
        created=created,
        modified=created if modified is None else modified,
        version=0,
        spec=spec if spec is not None else {"RoleArn": "r", "Hyper": {"lr": 0.1, "layers": [1, 2]}},
        state=state if state is not None else {},
    )


def names(records: list[Record]) -> list[str]:
    return [r.name for r in records]


class TestMetadataStore:
    """Every backend must pass every test here."""

    # --- create / get ----------------------------------------------------------------------
    def test_create_then_get_round_trips_every_field(self, store: MetadataStore) -> None:
        spec: dict[str, Any] = {
            "s": "ünïcode", "n": None, "b": True, "f": 1.5, "i": 2**40, "l": [{"k": []}],
        }
        created = store.create(
            make_record("job-1", status="Starting", created=12.25, modified=13.5, spec=spec,
                        state={"phase": "a"})
        )
        assert created.version == 1
        fetched = store.get("TrainingJob", "job-1")
        assert fetched == created
        assert (fetched.kind, fetched.name, fetched.status) == ("TrainingJob", "job-1", "Starting")
        assert fetched.arn.endswith(":trainingjob/job-1")
        assert (fetched.created, fetched.modified) == (12.25, 13.5)
        assert dict(fetched.spec) == spec
        assert dict(fetched.state) == {"phase": "a"}

    def test_create_sets_version_one_whatever_the_caller_passed(self, store: MetadataStore) -> None:
        record = dataclasses.replace(make_record("job-1"), version=7)
        assert store.create(record).version == 1
        assert store.get("TrainingJob", "job-1").version == 1

    def test_create_duplicate_name_raises_and_keeps_the_original(
        self, store: MetadataStore
    ) -> None:
        store.create(make_record("job-1", status="First"))
        with pytest.raises(DuplicateRecord) as caught:
            store.create(make_record("job-1", status="Second"))
        assert (caught.value.kind, caught.value.name) == ("TrainingJob", "job-1")
        assert caught.value.code == "ResourceInUse"
        assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
        assert store.get("TrainingJob", "job-1").status == "First"

    def test_same_name_in_another_kind_is_a_different_record(self, store: MetadataStore) -> None:
        store.create(make_record("x", kind="Model", status="m"))
        store.create(make_record("x", kind="Endpoint", status="e"))
        assert store.get("Model", "x").status == "m"
        assert store.get("Endpoint", "x").status == "e"

    def test_get_missing_raises_record_not_found(self, store: MetadataStore) -> None:
        store.create(make_record("job-1"))
        with pytest.raises(RecordNotFound) as caught:
            store.get("TrainingJob", "job-2")
        assert (caught.value.kind, caught.value.name) == ("TrainingJob", "job-2")
        with pytest.raises(RecordNotFound):
            store.get("Model", "job-1")

    # --- update (compare-and-swap) ---------------------------------------------------------
    def test_update_bumps_version_and_replaces_status_and_state(
        self, store: MetadataStore
    ) -> None:
        store.create(make_record("job-1", state={"old": 1}))
        updated = store.update(
            "TrainingJob", "job-1", 1, status="Completed", state={"new": [1]}, modified=2000.0
        )
        assert (updated.version, updated.status) == (2, "Completed")
        assert dict(updated.state) == {"new": [1]}
        assert updated.modified == 2000.0
        assert updated.created == 1000.0
        assert store.get("TrainingJob", "job-1") == updated

    def test_update_leaves_unnamed_fields_alone(self, store: MetadataStore) -> None:
        store.create(make_record("job-1", status="Starting", state={"keep": True}))
        after_status = store.update("TrainingJob", "job-1", 1, status="InProgress")
        assert dict(after_status.state) == {"keep": True}
        after_state = store.update("TrainingJob", "job-1", 2, state={"k": 2})
        assert after_state.status == "InProgress"
        assert after_state.version == 3
        assert after_state.modified > 1000.0  # defaults to now

    def test_update_with_stale_version_raises_and_changes_nothing(
        self, store: MetadataStore
    ) -> None:
        store.create(make_record("job-1"))
        store.update("TrainingJob", "job-1", 1, status="InProgress", state={"winner": "a"})
        with pytest.raises(StaleRecord) as caught:
            store.update("TrainingJob", "job-1", 1, status="Failed", state={"winner": "b"})
        assert caught.value.code == "ConflictException"
        current = store.get("TrainingJob", "job-1")
        assert (current.version, current.status, dict(current.state)) == (
            2, "InProgress", {"winner": "a"},
        )

    def test_update_missing_raises_record_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(RecordNotFound):
            store.update("TrainingJob", "nope", 1, status="Failed")

    def test_update_accepts_a_read_record_state_as_new_state(self, store: MetadataStore) -> None:
        first = store.create(make_record("job-1", state={"a": {"b": 1}}))
        updated = store.update("TrainingJob", "job-1", 1, state={**first.state, "c": first.spec})
        assert dict(updated.state) == {"a": {"b": 1}, "c": dict(first.spec)}

    def test_documents_that_are_not_json_raise_validation_error(
        self, store: MetadataStore
    ) -> None:
        store.create(make_record("job-1"))
        with pytest.raises(ValidationError, match="state"):
            store.update("TrainingJob", "job-1", 1, state={"loss": math.nan})
        with pytest.raises(ValidationError, match="state"):
            store.update("TrainingJob", "job-1", 1, state={"when": object()})
        with pytest.raises(ValidationError, match="spec"):
            store.create(make_record("job-2", spec={"bad": {1, 2}}))
        assert store.get("TrainingJob", "job-1").version == 1
        assert store.count(Query(kind="TrainingJob")) == 1

    def test_concurrent_updates_exactly_one_wins_per_version(self, store: MetadataStore) -> None:
        store.create(make_record("job-1"))
        threads = 8
        barrier = threading.Barrier(threads)
        outcomes: list[str] = []
        lock = threading.Lock()

        def contend(worker: int) -> None:
            barrier.wait()
            try:
                store.update("TrainingJob", "job-1", 1, state={"by": worker})
                outcome = f"won:{worker}"
            except StaleRecord:
                outcome = "stale"
            with lock:
                outcomes.append(outcome)

        self._run_threads(contend, threads)
        winners = [o for o in outcomes if o.startswith("won:")]
        assert len(winners) == 1
        assert outcomes.count("stale") == threads - 1
        final = store.get("TrainingJob", "job-1")
        assert final.version == 2
        assert f"won:{final.state['by']}" == winners[0]

    def test_concurrent_read_modify_write_loses_no_increment(self, store: MetadataStore) -> None:
        store.create(make_record("counter", state={"n": 0}))
        threads, increments = 6, 15

        def increment(_worker: int) -> None:
            for _ in range(increments):
                while True:
                    current = store.get("TrainingJob", "counter")
                    try:
                        store.update(
                            "TrainingJob", "counter", current.version,
                            state={"n": current.state["n"] + 1},
                        )
                        break
                    except StaleRecord:
                        continue

        self._run_threads(increment, threads)
        final = store.get("TrainingJob", "counter")
        assert final.state["n"] == threads * increments
        assert final.version == 1 + threads * increments

    @staticmethod
    def _run_threads(target: Any, count: int) -> None:
        """Run ``target(i)`` in ``count`` threads; re-raise the first error any of them hit."""
        errors: list[BaseException] = []

        def guarded(i: int) -> None:
            try:
                target(i)
            except BaseException as e:  # surfaced below, in the test's thread
                errors.append(e)

        workers = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(w.is_alive() for w in workers), "a worker thread hung"
        if errors:
            raise errors[0]

    # --- frozen records --------------------------------------------------------------------
    def test_records_are_frozen_snapshots(self, store: MetadataStore) -> None:
        spec = {"Hyper": {"lr": 0.1}}
        created = store.create(make_record("job-1", spec=spec, state={"phase": "a"}))
        spec["Hyper"]["lr"] = 99.0  # the caller's own dict, after the call
        assert created.spec["Hyper"]["lr"] == 0.1
        with pytest.raises(dataclasses.FrozenInstanceError):
            created.status = "Hacked"  # type: ignore[misc]
        with pytest.raises(TypeError):
            created.state["phase"] = "b"  # type: ignore[index]
        read = store.get("TrainingJob", "job-1")
        read.spec["Hyper"]["lr"] = 5.0  # nested values are private to this record
        store.update("TrainingJob", "job-1", 1, status="Completed", state={"phase": "z"})
        assert (read.status, dict(read.state), read.version) == ("InProgress", {"phase": "a"}, 1)
        again = store.get("TrainingJob", "job-1")
        assert again.spec["Hyper"]["lr"] == 0.1
        assert dict(again.state) == {"phase": "z"}

    # --- delete ----------------------------------------------------------------------------
    def test_delete_removes_record_tags_and_metrics(self, store: MetadataStore) -> None:
        record = store.create(make_record("job-1"))
        other = store.create(make_record("job-2"))
        for target in (record, other):
            store.set_tags(target.arn, {"team": "ml"})
            store.add_metric_points(target.arn, [MetricPoint("loss", 0.5, 1.0, 1)])
        store.delete("TrainingJob", "job-1")
        with pytest.raises(RecordNotFound):
            store.get("TrainingJob", "job-1")
        assert store.get_tags(record.arn) == {}
        assert store.get_metric_points(record.arn) == []
        assert store.get_tags(other.arn) == {"team": "ml"}
        assert len(store.get_metric_points(other.arn)) == 1
        # Re-created under the same name (same ARN): starts clean, inherits nothing.
        store.create(make_record("job-1"))
        assert store.get_tags(record.arn) == {}
        assert store.get_metric_points(record.arn) == []

    def test_delete_missing_raises_record_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(RecordNotFound):
            store.delete("TrainingJob", "nope")

    # --- list / count ----------------------------------------------------------------------
    @pytest.fixture
    def listed(self, store: MetadataStore) -> MetadataStore:
        """Five training jobs with known fields (ties on purpose) and one model."""
        rows = [
            ("b-job", "Completed", 10.0, 50.0),
            ("A-job", "InProgress", 20.0, 40.0),
            ("a-job", "Failed", 20.0, 30.0),
            ("c_job", "Completed", 30.0, 30.0),
            ("cxjob", "InProgress", 40.0, 10.0),
        ]
        for name, status, created, modified in rows:
            store.create(make_record(name, status=status, created=created, modified=modified))
        store.create(make_record("a-model", kind="Model", created=1.0))
        return store

    def test_list_defaults_to_oldest_first_within_the_kind(self, listed: MetadataStore) -> None:
        records = listed.list(Query(kind="TrainingJob"))
        assert names(records) == ["b-job", "A-job", "a-job", "c_job", "cxjob"]
        assert names(listed.list(Query(kind="Model"))) == ["a-model"]
        assert listed.list(Query(kind="Endpoint")) == []
        assert names(list(listed.iter_kind("TrainingJob", ["Completed"]))) == ["b-job", "c_job"]

    @pytest.mark.parametrize(
        ("sort_by", "descending", "expected"),
        [
            ("name", False, ["A-job", "a-job", "b-job", "c_job", "cxjob"]),
            ("name", True, ["cxjob", "c_job", "b-job", "a-job", "A-job"]),
            ("created", False, ["b-job", "A-job", "a-job", "c_job", "cxjob"]),
            ("created", True, ["cxjob", "c_job", "a-job", "A-job", "b-job"]),
            ("modified", False, ["cxjob", "a-job", "c_job", "A-job", "b-job"]),
            ("modified", True, ["b-job", "A-job", "c_job", "a-job", "cxjob"]),
            ("status", False, ["b-job", "c_job", "a-job", "A-job", "cxjob"]),
            ("status", True, ["cxjob", "A-job", "a-job", "c_job", "b-job"]),
        ],
    )
    def test_list_sorts_with_a_name_tiebreak(
        self, listed: MetadataStore, sort_by: str, descending: bool, expected: list[str]
    ) -> None:
        query = Query(kind="TrainingJob", sort_by=sort_by, descending=descending)
        assert names(listed.list(query)) == expected

    def test_list_filters(self, listed: MetadataStore) -> None:
        def listed_names(**filters: Any) -> list[str]:
            query = Query(kind="TrainingJob", sort_by="name", **filters)
            assert listed.count(query) == len(listed.list(query))
            return names(listed.list(query))

        assert listed_names(name_contains="A-J") == ["A-job", "a-job"]
        assert listed_names(name_contains="_") == ["c_job"]  # not a LIKE wildcard
        assert listed_names(name_contains="%") == []
        assert listed_names(status_in=["Completed", "Failed"]) == ["a-job", "b-job", "c_job"]
        assert listed_names(status_in=[]) == []
        assert listed_names(created_after=10.0, created_before=30.0) == ["A-job", "a-job"]
        assert listed_names(modified_after=10.0, modified_before=50.0) == [
            "A-job", "a-job", "c_job",
        ]
        assert listed_names(name_contains="job", status_in=["InProgress"], created_after=20.0) == [
            "cxjob"
        ]

    def test_list_pages_are_consistent_windows(self, listed: MetadataStore) -> None:
        base = Query(kind="TrainingJob", sort_by="created", descending=True)
        everything = names(listed.list(base))
        pages = [
            names(listed.list(dataclasses.replace(base, offset=offset, limit=2)))
            for offset in (0, 2, 4, 6)
        ]
        assert pages == [everything[0:2], everything[2:4], everything[4:5], []]
        assert names(listed.list(dataclasses.replace(base, offset=3))) == everything[3:]
        assert listed.list(dataclasses.replace(base, limit=0)) == []
        assert listed.count(dataclasses.replace(base, offset=4, limit=1)) == 5

    def test_list_rejects_bad_queries(self, listed: MetadataStore) -> None:
        with pytest.raises(ValidationError, match="sort by 'size'"):
            listed.list(Query(kind="TrainingJob", sort_by="size"))
        with pytest.raises(ValidationError):
            listed.list(Query(kind="TrainingJob", offset=-1))
        with pytest.raises(ValidationError):
            listed.count(Query(kind="TrainingJob", status_in="Completed"))

    # --- tags ------------------------------------------------------------------------------
    def test_tags_add_overwrite_remove(self, store: MetadataStore) -> None:
        arn = store.create(make_record("job-1")).arn
        assert store.get_tags(arn) == {}
        store.set_tags(arn, {"team": "ml", "env": "dev"})
        store.set_tags(arn, {"env": "prod", "cost": "42"})
        tags = store.get_tags(arn)
        assert tags == {"cost": "42", "env": "prod", "team": "ml"}
        assert list(tags) == ["cost", "env", "team"]  # key order
        store.remove_tags(arn, ["team", "not-there"])
        assert store.get_tags(arn) == {"cost": "42", "env": "prod"}
        store.set_tags(arn, {})
        store.remove_tags(arn, [])
        assert store.get_tags(arn) == {"cost": "42", "env": "prod"}

    def test_tags_on_an_unknown_arn_raise_record_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(RecordNotFound):
            store.set_tags("arn:aws:sagemaker:us-east-1:000000000000:model/none", {"a": "b"})

    # --- metric points ---------------------------------------------------------------------
    def test_metric_points_dedupe_and_order_by_seq(self, store: MetadataStore) -> None:
        arn = store.create(make_record("job-1")).arn
        store.add_metric_points(
            arn,
            [
                MetricPoint("loss", 0.5, 12.0, 2),
                MetricPoint("loss", 0.9, 11.0, 1),
                MetricPoint("acc", 0.7, 11.5, 1),
                MetricPoint("loss", 0.1, 99.0, 2),  # same (name, seq) in one batch: ignored
            ],
        )
        store.add_metric_points(
            arn, [MetricPoint("loss", 123.0, 13.0, 1), MetricPoint("loss", 0.25, 13.0, 3)]
        )
        assert store.get_metric_points(arn, "loss") == [
            MetricPoint("loss", 0.9, 11.0, 1),
            MetricPoint("loss", 0.5, 12.0, 2),
            MetricPoint("loss", 0.25, 13.0, 3),
        ]
        assert store.get_metric_points(arn) == [
            MetricPoint("acc", 0.7, 11.5, 1),
            MetricPoint("loss", 0.9, 11.0, 1),
            MetricPoint("loss", 0.5, 12.0, 2),
            MetricPoint("loss", 0.25, 13.0, 3),
        ]
        assert store.get_metric_points(arn, "missing") == []

    def test_metric_points_keep_nan_and_infinity(self, store: MetadataStore) -> None:
        arn = store.create(make_record("job-1")).arn
        store.add_metric_points(
            arn, [MetricPoint("loss", math.nan, 1.0, 1), MetricPoint("loss", math.inf, 2.0, 2)]
        )
        values = [p.value for p in store.get_metric_points(arn)]
        assert math.isnan(values[0])
        assert values[1] == math.inf

    def test_metric_points_on_an_unknown_arn_raise_record_not_found(
        self, store: MetadataStore
    ) -> None:
        with pytest.raises(RecordNotFound):
            store.add_metric_points("arn:none", [MetricPoint("loss", 1.0, 1.0, 1)])

    def test_many_metric_points_in_one_call(self, store: MetadataStore) -> None:
        arn = store.create(make_record("job-1")).arn
        points = [MetricPoint("loss", i / 10, float(i), i) for i in range(5000)]
        store.add_metric_points(arn, points)
        assert store.get_metric_points(arn, "loss") == points

    def test_metric_points_keep_their_step(self, store: MetadataStore) -> None:
        arn = store.create(make_record("job-1")).arn
        store.add_metric_points(
            arn, [MetricPoint("loss", 0.5, 1.0, 1, step=0), MetricPoint("loss", 0.4, 2.0, 2)]
        )
        assert [p.step for p in store.get_metric_points(arn)] == [0, None]

    # --- links and ARNs --------------------------------------------------------------------
    def test_links_are_added_once_listed_both_ways_and_removed(self, store: MetadataStore) -> None:
        a, b, c = (store.create(make_record(n)).arn for n in ("a", "b", "c"))
        assert store.add_link(Link("lineage", a, b, 2.0, {"AssociationType": "Produced"}))
        assert not store.add_link(Link("lineage", a, b, 9.0, {"AssociationType": "SameAs"}))
        assert store.add_link(Link("lineage", c, b, 1.0))
        assert store.add_link(Link("member", a, c, 3.0))
        into_b = store.list_links("lineage", destinations=[b])
        assert [(x.source, x.created) for x in into_b] == [(c, 1.0), (a, 2.0)]
        assert dict(into_b[1].attributes) == {"AssociationType": "Produced"}  # the first one kept
        assert [x.destination for x in store.list_links("lineage", sources=[a])] == [b]
        assert [x.destination for x in store.list_links("member", sources=[a, b])] == [c]
        assert store.list_links("lineage", sources=[a], destinations=[c]) == []
        assert [x.source for x in store.list_links("lineage", offset=1, limit=5)] == [a]
        assert store.remove_link("lineage", a, b)
        assert not store.remove_link("lineage", a, b)
        assert [x.source for x in store.list_links("lineage")] == [c]

    def test_links_need_both_ends_and_go_with_either(self, store: MetadataStore) -> None:
        a, b = (store.create(make_record(n)).arn for n in ("a", "b"))
        with pytest.raises(RecordNotFound):
            store.add_link(Link("lineage", a, "arn:none", 1.0))
        store.add_link(Link("lineage", a, b, 1.0))
        store.add_link(Link("lineage", b, a, 1.0))
        store.delete("TrainingJob", "b")
        assert store.list_links("lineage") == []

    def test_by_arn_finds_records_of_any_kind(self, store: MetadataStore) -> None:
        job = store.create(make_record("job-1"))
        model = store.create(make_record("m-1", kind="Model"))
        found = store.by_arn([model.arn, "arn:none", job.arn, job.arn])
        assert found == {job.arn: job, model.arn: model}
        assert store.by_arn([]) == {}

    # --- several stores, several processes -------------------------------------------------
    def test_two_stores_on_one_database_see_each_other(self, store_url: str) -> None:
        first, second = open_store(store_url), open_store(store_url)
        try:
            created = first.create(make_record("job-1"))
            assert second.get("TrainingJob", "job-1") == created
            second.update("TrainingJob", "job-1", 1, status="Completed")
            second.set_tags(created.arn, {"k": "v"})
            assert first.get("TrainingJob", "job-1").status == "Completed"
            assert first.get_tags(created.arn) == {"k": "v"}
            with pytest.raises(StaleRecord):
                first.update("TrainingJob", "job-1", 1, status="Failed")
        finally:
            first.close()
            second.close()

    def test_opening_twice_migrates_once_and_keeps_data(self, store_url: str) -> None:
        first = open_store(store_url)
        first.create(make_record("job-1"))
        first.close()
        second = open_store(store_url)
        try:
            assert names(second.list(Query(kind="TrainingJob"))) == ["job-1"]
            assert _alembic_versions(second) == [HEAD]
        finally:
            second.close()

    def test_processes_starting_at_once_migrate_safely(self, store_url: str) -> None:
        script = (
            "import sys\n"
            "from modelyard.store import open_store\n"
            "open_store(sys.argv[1]).close()\n"
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, store_url],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
        opened = open_store(store_url)
        try:
            assert _alembic_versions(opened) == [HEAD]
            assert opened.count(Query(kind="TrainingJob")) == 0
        finally:
            opened.close()


def test_upgrading_a_0001_database_keeps_its_points(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from modelyard.store._engines import MIGRATIONS_DIR
    from modelyard.store.sql import create_store_engine

    url = store_url
    engine = create_store_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text(
            "INSERT INTO resources VALUES ('TrainingJob','j','j','arn:j','Completed',1,1,1,'{}','{}')"
        ))
        conn.execute(sa.text("INSERT INTO metric_points VALUES ('arn:j','loss',1,0.5,2.0)"))
    engine.dispose()
    store = open_store(url)
    try:
        assert _alembic_versions(store) == [HEAD]
        assert store.get_metric_points("arn:j") == [MetricPoint("loss", 0.5, 2.0, 1, step=None)]
    finally:
        store.close()


def _alembic_versions(store: MetadataStore) -> list[str]:
    """The rows of Alembic's version table."""
    assert isinstance(store, SqlMetadataStore)
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
