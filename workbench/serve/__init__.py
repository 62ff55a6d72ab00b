"""serve layer: a verified bundle behind an OpenAI-compatible FastAPI app.

`create_app(ServedPipeline)` builds the app; `python -m workbench serve DIR` runs it with uvicorn.
FastAPI, uvicorn and prometheus-client are the `serve` extra, imported only by the modules that
use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.serve.app import create_app
    from workbench.serve.service import ServedPipeline

__all__ = ["ServedPipeline", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from workbench.serve.app import create_app

        return create_app
    if name == "ServedPipeline":
        from workbench.serve.service import ServedPipeline

        return ServedPipeline
    raise AttributeError(name)
