"""The stage contract, request state, config base, errors and registry every layer imports."""

from workbench.core.errors import WorkbenchError
from workbench.core.schema import PipelineConfig
from workbench.core.stage import MemoryStageCache, Pipeline, Stage
from workbench.core.state import Chunk, GuardVerdict, ModelCall, RequestState

__all__ = [
    "Chunk",
    "GuardVerdict",
    "MemoryStageCache",
    "ModelCall",
    "Pipeline",
    "PipelineConfig",
    "RequestState",
    "Stage",
    "WorkbenchError",
]
