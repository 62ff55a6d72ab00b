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


# What a finished result row depends on: the layers a pipeline runs and scores with, and the
# modules that turn its state into a row. Not tracking, notebooks, the CLI or serving.
_RESULT_CODE = (
    "core",
    "models",
    "retrieval",
    "guardrails",
    "routing",
    "evaluation",
    "sweeps",
    "pipeline.py",
    "runner.py",
)


@functools.cache
def workbench_code_version(parts: tuple[str, ...] = _RESULT_CODE) -> str:
    """A hash of the workbench source a finished result row depends on (`parts`: folders and
    files of the package): what a journal of finished rows (a sweep's) is only valid for."""
    files: list[Path] = []
    for part in parts:
        path = _PACKAGE_ROOT / part
        files.extend(_folder_files(path) if path.is_dir() else [path])
    return _hash_files(files)
