"""What a stage's code is, for cache keys: a hash of its source, and versions of the packages it
relies on.

A stage in `workbench.<layer>` may use anything in its layer and in `core` (layers never import
each other sideways), so hashing those two folders covers every line of ours that can change
its output. A bug fix there therefore invalidates that stage's cached outputs, and nothing
else's. A stage defined elsewhere (a user's class) is hashed by its own module file plus
`core`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import sys
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_CORE = _PACKAGE_ROOT / "core"


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(str(path.relative_to(path.anchor)).encode() + b"\x00")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def _folder_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(folder.rglob("*.py")))


def _source_files(module_name: str) -> list[Path]:
    parts = module_name.split(".")
    if parts[0] == "workbench" and len(parts) > 2 and (_PACKAGE_ROOT / parts[1]).is_dir():
        return [*_folder_files(_PACKAGE_ROOT / parts[1]), *_folder_files(_CORE)]
    module = sys.modules.get(module_name)
    source = inspect.getsourcefile(module) if module is not None else None
    return [Path(source).resolve(), *_folder_files(_CORE)] if source else list(_folder_files(_CORE))


@functools.cache
def code_version(module_name: str) -> str:
    """A hash of the source a class in `module_name` can run: its layer's folder and `core`."""
    return _hash_files(_source_files(module_name))


@functools.cache
def package_version(distribution: str) -> str:
    """The installed version of a distribution, or "absent"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def package_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    return {name: package_version(name) for name in distributions}


def workbench_code_version() -> str:
    """A hash of every source file of the workbench: what a journal of finished results (a
    sweep's) is only valid for."""
    return _hash_files(list(_folder_files(_PACKAGE_ROOT)))
