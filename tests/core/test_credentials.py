"""The platform key pair: created once, private, stable across starts."""

from __future__ import annotations

import json
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelyard.core.credentials import (
    CREDENTIALS_FILE,
    generate_credentials,
    load_or_create_credentials,
    lookup_secret,
)
from modelyard.core.errors import ModelyardError


def test_created_on_first_call_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    credentials = load_or_create_credentials(home)
    path = home / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "access_key_id": credentials.access_key_id,
        "secret_access_key": credentials.secret_access_key,
    }
    assert re.fullmatch(r"MYAK[A-Z2-7]{16}", credentials.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", credentials.secret_access_key)
    assert [p.name for p in home.iterdir()] == [CREDENTIALS_FILE]  # no temp file left


def test_second_call_returns_the_same_pair(tmp_path: Path) -> None:
    first = load_or_create_credentials(tmp_path)
    assert load_or_create_credentials(tmp_path) == first


def test_concurrent_first_starts_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        pairs = set(pool.map(lambda _: load_or_create_credentials(tmp_path), range(16)))
    assert len(pairs) == 1


def test_generated_pairs_differ() -> None:
    assert generate_credentials() != generate_credentials()


def test_repr_hides_secret(tmp_path: Path) -> None:
    credentials = load_or_create_credentials(tmp_path)
    assert credentials.secret_access_key not in repr(credentials)


def test_lookup_secret(tmp_path: Path) -> None:
    credentials = load_or_create_credentials(tmp_path)
    lookup = lookup_secret(tmp_path)
    assert lookup(credentials.access_key_id) == credentials.secret_access_key
    assert lookup("MYAKNOTTHEKEY0000000") is None


def test_corrupt_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / CREDENTIALS_FILE).write_text("{not json")
    with pytest.raises(ModelyardError, match="Cannot read the access key pair"):
        load_or_create_credentials(tmp_path)
