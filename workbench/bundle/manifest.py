"""A bundle's `manifest.json`: the sha256 and size of every file, and one digest over them all.

The digest is the sha256 of the lines `"<sha256>  <path>\\n"` for every listed file, sorted by
path (POSIX, relative to the bundle): exactly what `sha256sum` prints for those files in that
order, so it can be recomputed without the workbench:

    cd DIR && find . -type f ! -name manifest.json ! -path './var/*' | sed 's|^\\./||' \\
        | LC_ALL=C sort | xargs sha256sum | sha256sum

`manifest.json` itself and everything under `var/` (runtime state: the server's request log)
are not listed and not checked.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.core.errors import BundleError

MANIFEST = "manifest.json"
VAR_DIR = "var"
FORMAT = "workbench.bundle"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_digest(files: Mapping[str, Mapping[str, Any]]) -> str:
    """The one digest of a bundle, from its listed files' sha256 (see the module docstring)."""
    lines = "".join(f"{files[path]['sha256']}  {path}\n" for path in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def _content_files(folder: Path) -> Iterator[str]:
    """Every file of the bundle that the manifest lists: all but itself and `var/`."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel in (MANIFEST, VAR_DIR) or rel.startswith(f"{VAR_DIR}/"):
            continue
        if path.is_file() or path.is_symlink():
            yield rel


def write_manifest(folder: Path, **extra: Any) -> dict[str, Any]:
    """Hash every file of `folder` and write `manifest.json` last; returns the manifest."""
    files = {}
    for rel in _content_files(folder):
        path = folder / rel
        files[rel] = {"sha256": file_digest(path), "size": path.stat().st_size}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
        "files": files,
        "digest": bundle_digest(files),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed manifest of `folder`, with its shape checked; BundleError otherwise."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle folder")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; not a bundle, or an incomplete one") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a workbench bundle manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format version {manifest.get('format_version')!r}; this workbench reads {FORMAT_VERSION}"
        )
    files = manifest.get("files")
    ok = isinstance(files, dict) and all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("size"), int)
        for v in files.values()
    )
    if not ok or not isinstance(manifest.get("digest"), str):
        raise BundleError(f"{path}: malformed (needs 'files' with sha256 and size, and 'digest')")
    return manifest


def verify_bundle(path: str | Path, *, expected_digest: str | None = None) -> str:
    """Check every file of the bundle at `path` against its manifest; returns the digest.

    Raises `BundleError` naming the first mismatch: a listed file missing or changed (size or
    sha256), a file the manifest does not list (outside `var/`), a digest that does not match
    the listed files, or (with `expected_digest`, e.g. the one in the model registry) a digest
    other than the expected one.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    files: dict[str, dict[str, Any]] = manifest["files"]
    for rel in sorted(files):
        entry = files[rel]
        target = folder / rel
        if not target.is_file():
            raise BundleError(f"{folder}: {rel} is missing")
        if target.stat().st_size != entry["size"]:
            raise BundleError(f"{folder}: {rel} changed (size {target.stat().st_size}, manifest says {entry['size']})")
        if file_digest(target) != entry["sha256"]:
            raise BundleError(f"{folder}: {rel} changed (sha256 differs from the manifest)")
    for rel in _content_files(folder):
        if rel not in files:
            raise BundleError(f"{folder}: {rel} is not listed in the manifest")
    digest = bundle_digest(files)
    if manifest["digest"] != digest:
        raise BundleError(f"{folder}: {MANIFEST} digest does not match its files (manifest edited?)")
    if expected_digest is not None and digest != expected_digest:
        raise BundleError(f"{folder}: digest {digest[:12]}… is not the expected {expected_digest[:12]}…")
    return digest
