"""The platform's own access key pair, created on first start so local use needs no setup.

The pair lives in ``<home>/credentials.json`` (mode 0600)::

    {"access_key_id": "MYAK...", "secret_access_key": "..."}

Clients use it exactly like an AWS key pair (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``);
the server checks SigV4 signatures against it through :func:`lookup_secret`.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard.core.errors import ModelyardError

__all__ = [
    "CREDENTIALS_FILE",
    "Credentials",
    "generate_credentials",
    "load_or_create_credentials",
    "lookup_secret",
]

CREDENTIALS_FILE = "credentials.json"
ACCESS_KEY_PREFIX = "MYAK"
# AWS key ids are 20 characters of upper-case base32; secrets 40 of base64. Keeping the same
# alphabets keeps tools that sanity-check key formats happy.
_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class Credentials:
    """An access key pair; ``repr`` hides the secret so it never lands in a log."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def load_or_create_credentials(home: Path) -> Credentials:
    """Return the key pair stored under ``home``, creating it (atomically, mode 0600) if absent.

    Safe when several processes start at once: exactly one pair is written and all return it.
    """
    path = Path(home) / CREDENTIALS_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_once(path, generate_credentials())
    return _read(path)


def generate_credentials() -> Credentials:
    """A fresh random key pair (id ``MYAK`` + 16 characters, 40-character secret)."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(20 - len(ACCESS_KEY_PREFIX)))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return Credentials(ACCESS_KEY_PREFIX + suffix, secret)


def lookup_secret(home: Path) -> Callable[[str], str | None]:
    """A ``lookup_secret`` for :func:`modelyard.api.sigv4.verify_request` over ``home``'s pair."""
    credentials = load_or_create_credentials(home)

    def lookup(access_key_id: str) -> str | None:
        if access_key_id == credentials.access_key_id:
            return credentials.secret_access_key
        return None

    return lookup


def _create_once(path: Path, credentials: Credentials) -> None:
    """Write ``credentials`` to ``path`` unless another process got there first."""
    document = json.dumps(
        {
            "access_key_id": credentials.access_key_id,
            "secret_access_key": credentials.secret_access_key,
        },
        indent=2,
    )
    # Write a private temp file completely, then hard-link it into place: link() fails if the
    # target exists, so a concurrent starter never overwrites a pair another process handed out,
    # and no reader ever sees a half-written file.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(document + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        except OSError:
            # Filesystems without hard links: rename is still atomic, only the race between
            # two first starts is lost (the later one wins).
            if not path.exists():
                os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _read(path: Path) -> Credentials:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(str(data["access_key_id"]), str(data["secret_access_key"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelyardError(f"Cannot read the access key pair in {path}: {e}") from e
