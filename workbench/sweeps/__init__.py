"""Sweeps: a spec expands (with Optuna) into pipeline variants that answer a dataset into a
resumable journal; a winner is picked by paired tests and logged to MLflow.

>>> from workbench.sweeps import run_sweep
>>> result = run_sweep("experiments/sweeps/quickstart.yaml", "squad_disfl", limit=10)
>>> result.leaderboard, result.winner

Names are imported on first use, so `python -m workbench --help` does not load pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "plan_sweep": "workbench.sweeps.engine",
    "run_sweep": "workbench.sweeps.engine",
    "Variant": "workbench.sweeps.expand",
    "SweepPlan": "workbench.sweeps.result",
    "SweepResult": "workbench.sweeps.result",
    "SweepSpec": "workbench.sweeps.spec",
    "load_spec": "workbench.sweeps.spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench.sweeps' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
