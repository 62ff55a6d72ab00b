"""The one base for relative paths: a session's root (the current directory by default).

Configs name model weights, corpora and stores by path; `Workbench` resolves every relative one
against its root. The config as written (and logged) keeps the user's relative paths; only the
parts handed to loaders get the resolved ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.schema import ModelSource, PipelineConfig


def _resolved_source(source: ModelSource, root: Path) -> ModelSource:
    if source.path is None or Path(source.path).expanduser().is_absolute():
        return source
    return source.model_copy(update={"path": str(root / source.path)})


def _with_source(section: Any, root: Path) -> Any:
    source = getattr(section, "source", None)
    if not isinstance(source, ModelSource):
        return section
    return section.model_copy(update={"source": _resolved_source(source, root)})


def resolve_model_paths(config: PipelineConfig, root: Path) -> PipelineConfig:
    """`config` with every relative model weight path (embedder, local models, cross-encoder)
    made relative to `root` instead of the process's working directory."""
    if root == Path("."):
        return config
    retrieval = config.retrieval.model_copy(update={"reranker": _with_source(config.retrieval.reranker, root)})
    return config.model_copy(
        update={
            "embedder": _with_source(config.embedder, root),
            "models": {name: _with_source(ep, root) for name, ep in config.models.items()},
            "retrieval": retrieval,
        }
    )
