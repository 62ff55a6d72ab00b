"""Build `datasets/calibration/example.jsonl`, a small labels file for `python -m workbench calibrate`.

Deterministic (seed 10): the same inputs give a byte-identical file. Run from the repository root:

    .venv/bin/python datasets/calibration/build_example.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "example.jsonl"

# How someone asks for the quickstart's `structured` route: JSON phrasings around a real question.
STRUCTURED = [
    "Return a JSON object answering: {q}",
    "{q} Give me the answer as JSON.",
    "As JSON, please: {q}",
    "Output structured data for this question: {q}",
    "{q} Reply with a JSON object with the answer.",
]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build() -> list[dict]:
    rng = random.Random(10)
    guard = _jsonl(ROOT / "datasets" / "guard" / "train.jsonl")
    attacks = rng.sample([r for r in guard if r["label"] == "attack"], 40)
    questions = [r for r in guard if r["label"] == "benign" and r["source"].startswith("datasets:")]
    lookalikes = [r for r in guard if r["label"] == "benign" and r["source"].startswith("generated:")]
    rows: list[dict] = [{"id": f"attack-{i}", "text": r["text"], "attack": True} for i, r in enumerate(attacks)]
    # Dataset questions are benign and belong on the default (general) route.
    for i, r in enumerate(rng.sample(questions, 30)):
        rows.append({"id": f"question-{i}", "text": r["text"], "attack": False, "route": "general"})
    rows += [
        {"id": f"lookalike-{i}", "text": r["text"], "attack": False} for i, r in enumerate(rng.sample(lookalikes, 20))
    ]
    for i, r in enumerate(rng.sample(questions, 20)):
        text = STRUCTURED[i % len(STRUCTURED)].format(q=r["text"])
        rows.append({"id": f"structured-{i}", "text": text, "attack": False, "route": "structured"})
    # Groundedness: a question's supported and unsupported sentence, with its context.
    contexts = {d["id"]: d["text"] for d in _jsonl(ROOT / "datasets" / "knowledge_conflicts" / "corpus.jsonl")}
    sentences = [r for r in _jsonl(ROOT / "datasets" / "knowledge_conflicts" / "sentence_answers.jsonl")]
    for i, r in enumerate(rng.sample([s for s in sentences if s["split"] == "tune"], 15)):
        context = contexts[r["question_id"].removesuffix("-q")]
        for kind, grounded in (("supported", True), ("unsupported", False)):
            rows.append({"id": f"answer-{i}-{kind}", "answer": r[kind], "contexts": [context], "grounded": grounded})
    return rows


if __name__ == "__main__":
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} rows -> {OUT.relative_to(ROOT)}")
