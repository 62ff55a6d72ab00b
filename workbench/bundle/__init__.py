"""Bundles: the evaluated pipeline exported as one verified folder (config and prompts, index,
model references, scorecard, golden questions, environment, manifest), and opened to serve.

>>> from workbench.bundle import Bundle, export_bundle, verify_bundle
>>> report = export_bundle("sw-0123456789ab", "bundle/")   # a sweep id, run id or config YAML
>>> bundle = Bundle.open("bundle/"); bundle.session().ask("...")

Names are imported on first use, so `python -m workbench --help` does not load pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bundle": "workbench.bundle.bundle",
    "GoldenQuestion": "workbench.bundle._contents",
    "ExportReport": "workbench.bundle.export",
    "export_bundle": "workbench.bundle.export",
    "verify_bundle": "workbench.bundle.manifest",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench.bundle' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
