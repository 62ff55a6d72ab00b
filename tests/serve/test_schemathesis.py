"""Schemathesis against the app's own OpenAPI schema, in process: no generated request, valid
or not, gets a 5xx, and every response matches what the schema declares.

`schemathesis.pytest.from_fixture` does not run under pytest 9 (it reads a private attribute of
the test node), so each operation's cases are drawn with Hypothesis from the operation's
strategy; a test checks that the parametrized list is every operation of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import REPO, write_config
from workbench.serve.app import create_app
from workbench.serve.service import ServedPipeline
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    root = tmp_path_factory.mktemp("schemathesis")
    corpus = root / "corpus.jsonl"
    lines = (REPO / "datasets" / "squad_disfl" / "corpus.jsonl").read_text().splitlines()[:6]
    corpus.write_text("".join(json.dumps(json.loads(line)) + "\n" for line in lines))
    config = write_config(root, corpus)
    wb = Workbench.from_yaml(config, embedder=HashingEmbedder(), cache=None, root=root)
    served = ServedPipeline.from_workbench(wb, log_dir=Path(root) / "var" / "requests", digest="s" * 64)
    app = create_app(served, max_body_bytes=200_000)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    served.close()
    wb.close()


OPERATIONS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/ask"),
    ("POST", "/v1/retrieve"),
    ("POST", "/v1/feedback"),
    ("GET", "/v1/models"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/version"),
    ("GET", "/metrics"),
]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Operations without parameters have no invalid input to generate: positive cases only.
CASES = [(m, p, POSITIVE) for m, p in OPERATIONS] + [(m, p, NEGATIVE) for m, p in OPERATIONS if m == "POST"]


def test_every_operation_is_fuzzed(api_schema) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_server_errors_and_responses_match_the_schema(
    api_schema, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50 if method == "POST" else 3,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()
