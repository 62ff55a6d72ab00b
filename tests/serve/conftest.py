"""Served apps in process: a `Workbench` session with fakes behind `create_app`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import write_config
from workbench.serve.app import create_app
from workbench.serve.service import ServedPipeline
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder


@pytest.fixture(scope="session")
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def make_session(tmp_path: Path, small_dataset: Path, embedder: HashingEmbedder) -> Iterator[Callable[..., Workbench]]:
    """Sessions over the small corpus; `fakes=` injects models by endpoint name, other keywords
    override the extractive config's top-level keys."""
    sessions: list[Workbench] = []

    def make(fakes: dict[str, Any] | None = None, **overrides: Any) -> Workbench:
        folder = tmp_path / f"session{len(sessions)}"
        folder.mkdir()
        config = write_config(folder, small_dataset / "corpus.jsonl", **overrides)
        wb = Workbench.from_yaml(config, embedder=embedder, models=fakes, cache=None, root=folder)
        sessions.append(wb)
        return wb

    yield make
    for wb in sessions:
        wb.close()


@pytest.fixture
def make_served(tmp_path: Path) -> Callable[..., ServedPipeline]:
    def make(wb: Workbench, **kwargs: Any) -> ServedPipeline:
        kwargs.setdefault("digest", "d" * 64)
        return ServedPipeline.from_workbench(wb, log_dir=tmp_path / "var" / "requests", **kwargs)

    return make


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on `app`, with the app's lifespan running (ASGITransport sends none)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://served", timeout=30) as client:
            yield client


@pytest.fixture
def served(make_session: Callable[..., Workbench], make_served: Callable[..., ServedPipeline]) -> ServedPipeline:
    return make_served(make_session())


@pytest.fixture
async def client(served: ServedPipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(served)) as c:
        yield c
