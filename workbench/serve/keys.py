"""The API keys file: who may call `serve --keys FILE`, as hashes, never as secrets.

A key is `wb-<key id>-<secret>`. The key id is public (it names the key in `keys list`, in logs
and in the limiter's counters) and indexes the file, so checking a key is one dict lookup and
one constant-time compare of sha256(secret). The secret is 32 random bytes
(`secrets.token_urlsafe`), so a fast hash is enough: there is nothing to brute-force.

The file is YAML (or JSON, by its `.json` suffix), typed with pydantic (`extra="forbid"`), and
every write is atomic: a temporary file in the same folder, fsynced, then renamed over the old
one, under an advisory lock so two `keys create` never lose each other's key. A server reading
it sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from workbench.core.config import ConfigModel, describe_validation_error
from workbench.core.errors import ConfigError

PREFIX = "wb-"


class KeyRecord(ConfigModel):
    """One key as stored: its hash, its team and limits, when it was created and revoked."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the key's secret part, hex")
    team: str = Field(min_length=1)
    rpm: int | None = Field(default=None, ge=1, description="requests per minute (None: no per-key limit)")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute (None: no per-key limit)")
    daily_tokens: int | None = Field(default=None, ge=1, description="tokens per day (None: no per-key quota)")
    created: dt.datetime
    revoked: dt.datetime | None = None


class KeysFile(ConfigModel):
    """The whole file: key id -> record."""

    version: int = 1
    keys: dict[str, KeyRecord] = Field(default_factory=dict)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a `wb-<id>-<secret>` key, or None if it does not have that shape."""
    if not key.startswith(PREFIX):
        return None
    key_id, sep, secret = key[len(PREFIX) :].partition("-")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


def matches(record: KeyRecord, secret: str) -> bool:
    """Whether `secret` is the record's, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), record.sha256)


def parse_keys(text: str, source: str) -> KeysFile:
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not a valid keys file ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return KeysFile()
    try:
        return KeysFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def load_keys(path: str | Path, *, missing_ok: bool = False) -> KeysFile:
    """The keys file at `path` (an empty one if it does not exist and `missing_ok`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        if missing_ok:
            return KeysFile()
        raise ConfigError(f"{path}: keys file not found (create one with `keys create`)") from exc
    return parse_keys(text, str(path))


def dump_keys(keys: KeysFile, path: str | Path) -> str:
    data = keys.model_dump(mode="json")
    if str(path).endswith(".json"):
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def save_keys(keys: KeysFile, path: str | Path) -> None:
    """Write `keys` to `path` atomically (temp file, fsync, rename), readable by the owner only."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dump_keys(keys, path))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory lock beside the file, held across read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def create_key(
    path: str | Path,
    team: str,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    daily_tokens: int | None = None,
) -> tuple[str, str]:
    """Add a key for `team` to the file (created if missing): (key id, the full key). The full
    key exists only in the return value; the file keeps its hash."""
    path = Path(path)
    if not team.strip():
        raise ConfigError("--team must not be empty")
    with _locked(path):
        keys = load_keys(path, missing_ok=True)
        key_id = secrets.token_hex(6)
        while key_id in keys.keys:
            key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        try:
            record = KeyRecord(
                sha256=hash_secret(secret), team=team, rpm=rpm, tpm=tpm, daily_tokens=daily_tokens, created=_now()
            )
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "keys create")) from exc
        save_keys(keys.model_copy(update={"keys": {**keys.keys, key_id: record}}), path)
    return key_id, f"{PREFIX}{key_id}-{secret}"


def revoke_key(path: str | Path, key_id: str) -> KeyRecord:
    """Mark `key_id` revoked (idempotent); its record as it now stands."""
    path = Path(path)
    with _locked(path):
        keys = load_keys(path)
        record = keys.keys.get(key_id)
        if record is None:
            known = ", ".join(sorted(keys.keys)) or "none"
            raise ConfigError(f"{path}: no key with id {key_id!r} (known: {known})")
        if record.revoked is None:
            record = record.model_copy(update={"revoked": _now()})
            save_keys(keys.model_copy(update={"keys": {**keys.keys, key_id: record}}), path)
    return record
