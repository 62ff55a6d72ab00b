"""workbench: a notebook-first evaluation and experimentation workbench for RAG pipelines."""

import os

# Offline by default: nothing is fetched from a model hub at run time.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Library progress bars would interleave with ours and with one-line errors.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# ragas would otherwise send usage analytics over the network.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

__version__ = "0.1.0"
