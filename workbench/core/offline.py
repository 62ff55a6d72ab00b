"""Offline by default, applied where models and libraries load, never at `import workbench`.

Importing a library must not change the importing process's environment; loading a model
through the workbench must not reach a model hub. So each loader calls `offline_environment()`
just before it imports or loads what reads these variables. A variable the user already set
wins (`setdefault`): `HF_HUB_OFFLINE=0` in the environment still allows downloads.
"""

from __future__ import annotations

import os

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Library progress bars would interleave with ours and with one-line errors.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # ragas would otherwise send usage analytics over the network.
    "RAGAS_DO_NOT_TRACK": "true",
}


def offline_environment() -> None:
    """Set the offline defaults the model libraries read (idempotent; user values win)."""
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)


def quiet_progress_bars() -> None:
    """Apply `HF_HUB_DISABLE_PROGRESS_BARS` to transformers even when it was imported before
    the variable was set (it reads it once, at import): a weight-loading bar would otherwise
    interleave with one-line CLI output."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") != "1":
        return
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()
