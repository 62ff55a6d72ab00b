"""An answer from the local model does not depend on the prompt that ran before it.

The two prompts are from the quickstart sweep: one squad_disfl question under two variants,
sharing the system prompt and the start of the context. With llama-cpp-python's prefix reuse
(the previous call's KV cache kept for the shared start), the second prompt's answer after the
first differed from its answer on a fresh model; a sweep's, a cached and a served answer must
all be the fresh one.
"""

import json
from pathlib import Path

import pytest

from tests.models.conftest import GGUF_SOURCE, THREADS
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint
from workbench.models import LlamaCppModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROMPTS = json.loads((Path(__file__).parent / "data" / "order_dependent_prompts.json").read_text())
# The quickstart's endpoint settings, under which the difference was seen.
QUICKSTART = LlamaCppEndpoint(
    provider="llama_cpp",
    source=GGUF_SOURCE,
    n_ctx=2048,
    n_threads=THREADS,
    params={"temperature": 0.0, "max_tokens": 24, "stop": ["\n"]},
)


def _request(name: str) -> GenerationRequest:
    return GenerationRequest.model_validate(PROMPTS[name])


def test_an_answer_is_the_same_whatever_ran_before_it(gguf_path: Path) -> None:
    first, second = _request("first"), _request("second")
    fresh_model = LlamaCppModel(QUICKSTART)
    try:
        fresh = fresh_model.complete(second).text
    finally:
        fresh_model.close()
    model = LlamaCppModel(QUICKSTART)
    try:
        model.complete(first)
        after_first = model.complete(second).text
        assert model.complete(second).text == after_first
    finally:
        model.close()
    assert after_first == fresh
