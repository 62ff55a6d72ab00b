"""Offline faithfulness (`claim_support`) on knowledge_conflicts, short and sentence-form answers.

knowledge_conflicts gives, for each question, a context rewritten so that its answer (`answer`)
differs from the real-world one (`parametric_answer`). With the gold context, `answer` is
supported and `parametric_answer` is not; AUROC is the probability that a supported answer
scores above an unsupported one (ties count half).

The short form scores the answers as they are (about two words each). The sentence form is how
RAG systems write: a full sentence restating the question around the answer. It is built
deterministically, with no model, by `build_sentence_answers`:

- the question is lightly detokenised (NQ writes "grey 's anatomy", "gon na") and stripped of
  its "?";
- a declarative restatement replaces a leading "who" with the answer ("who sings X" -> "Bono
  sings X"; "who 's X" -> "Bono is X"); a question not starting with "who" (31 of 300)
  becomes 'the answer to "what ..." is Bono';
- each template below wraps it, once with `answer` (supported) and once with
  `parametric_answer` (unsupported), so both sides share every word but the answer.

Templates come in two disjoint sets. `TUNE` was the only set looked at while developing the
metric; `REPORT` was written apart and is the figure reported, so the number does not reward
fitting the framing words of the templates the metric was tuned on (its framing words, such as
"excerpt", "records", "clear", are deliberately not stop words). The rows are written to
`datasets/knowledge_conflicts/sentence_answers.jsonl` (`--write`), which the AUROC test reads.

    .venv/bin/python benchmarks/bench_faithfulness.py [--write] [--every 1] [--lexical]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "knowledge_conflicts"
SENTENCE_FILE = DATA / "sentence_answers.jsonl"

_CONTRACTIONS = ((" 's", "'s"), (" n't", "n't"), (" 're", "'re"), (" 'm", "'m"), (" 'll", "'ll"), (" 've", "'ve"))
_JOINED = (("gon na", "gonna"), ("wan na", "wanna"), ("got ta", "gotta"))


def detokenise(question: str) -> str:
    text = " ".join(question.split()).rstrip("?").strip()
    for old, new in _CONTRACTIONS + _JOINED:
        text = text.replace(old, new)
    return text


def restate(question: str, answer: str) -> str:
    """A declarative sentence (no final stop) saying `answer` answers `question`."""
    q = detokenise(question)
    for wh, verb in (("who's ", "is "), ("who ", "")):
        if q.startswith(wh):
            return answer + " " + verb + q[len(wh) :]
    return f'the answer to "{q}" is {answer}'


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


Template = Callable[[str, str], str]

# Seen while developing claim_support.
TUNE: dict[str, Template] = {
    "according": lambda q, a: f"According to the sources, {restate(q, a)}.",
    "answer_to": lambda q, a: f'The answer to "{_cap(detokenise(q))}?" is {a}.',
    "based_on": lambda q, a: f"Based on the provided context, {restate(q, a)}.",
    "answer_first": lambda q, a: f"{a}. {_cap(restate(q, a))}.",
}

# Held out: written separately, never used for tuning; the reported figure.
REPORT: dict[str, Template] = {
    "excerpt": lambda q, a: f"{_cap(restate(q, a))}, as the excerpt makes clear.",
    "records": lambda q, a: f"From what the records show, {restate(q, a)}.",
    "in_short": lambda q, a: f"You asked {detokenise(q)}. In short, it is {a}.",
    "looking_up": lambda q, a: f"Looking this up: {restate(q, a)}. I hope this helps!",
}


def build_sentence_answers() -> list[dict[str, str]]:
    """One row per (question, template): `supported` and `unsupported` sentence answers."""
    rows = []
    for line in (DATA / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if not (q.get("answer") and q.get("parametric_answer") and q.get("gold_doc_ids")):
            continue
        for split, templates in (("tune", TUNE), ("report", REPORT)):
            for name, template in templates.items():
                rows.append(
                    {
                        "question_id": q["id"],
                        "split": split,
                        "template": name,
                        "supported": template(q["question"], q["answer"]),
                        "unsupported": template(q["question"], q["parametric_answer"]),
                    }
                )
    return rows


def auroc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"(re)write {SENTENCE_FILE.relative_to(ROOT)}")
    parser.add_argument("--every", type=int, default=1, help="score every n-th question only")
    parser.add_argument("--lexical", action="store_true", help="no embedder")
    args = parser.parse_args()
    for name, value in (("RAGAS_DO_NOT_TRACK", "true"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(name, value)

    rows = build_sentence_answers()
    if args.write:
        SENTENCE_FILE.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {len(rows)} rows to {SENTENCE_FILE.relative_to(ROOT)}")

    from workbench.core.dataset import load_dataset
    from workbench.evaluation.base import ScoreInput
    from workbench.evaluation.metrics import build_metrics
    from workbench.evaluation.scoring import score_sync

    embedder = None
    if not args.lexical:
        from workbench.core.config import load_yaml
        from workbench.core.schema import PipelineConfig
        from workbench.models.embedder import SentenceTransformerEmbedder

        config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
        embedder = SentenceTransformerEmbedder(config.embedder)
    metrics = build_metrics(["claim_support"], embedder=embedder)

    dataset = load_dataset(DATA)
    docs = {d.id: d.text for d in dataset.documents}
    questions = {q.id: q for q in dataset.questions}
    kept = [q.id for q in dataset.questions if q.answer and q.parametric_answer and q.gold_doc_ids][:: args.every]

    def score(items: list[tuple[str, str, str]]) -> dict[str, float]:
        """(row id, question id, answer) -> claim_support by row id."""
        inputs = [
            ScoreInput(
                question_id=rid,
                question=questions[qid].question,
                answer=answer,
                contexts=[docs[questions[qid].gold_doc_ids[0]]],
            )
            for rid, qid, answer in items
        ]
        report = score_sync(inputs, metrics)
        assert report.failures == {"claim_support": 0}, report.failures
        frame = report.frame.set_index("question_id")["claim_support"]
        return {str(k): float(v) for k, v in frame.items()}

    lines = []
    start = time.perf_counter()
    short = score(
        [(f"{qid}:pos", qid, questions[qid].answer or "") for qid in kept]
        + [(f"{qid}:neg", qid, questions[qid].parametric_answer or "") for qid in kept]
    )
    area = auroc([short[f"{q}:pos"] for q in kept], [short[f"{q}:neg"] for q in kept])
    lines.append(f"short form: AUROC {area:.3f} ({len(kept)} pairs)")
    wanted = set(kept)
    for split in ("tune", "report"):
        chosen = [r for r in rows if r["split"] == split and r["question_id"] in wanted]
        items = []
        for i, r in enumerate(chosen):
            items += [(f"{i}:pos", r["question_id"], r["supported"]), (f"{i}:neg", r["question_id"], r["unsupported"])]
        values = score(items)
        pos = [values[f"{i}:pos"] for i in range(len(chosen))]
        neg = [values[f"{i}:neg"] for i in range(len(chosen))]
        per_template = []
        for name in dict.fromkeys(r["template"] for r in chosen):
            idx = [i for i, r in enumerate(chosen) if r["template"] == name]
            per_template.append(f"{name} {auroc([pos[i] for i in idx], [neg[i] for i in idx]):.3f}")
        lines.append(
            f"sentence form, {split} templates: AUROC {auroc(pos, neg):.3f} ({len(chosen)} pairs; "
            + ", ".join(per_template)
            + ")"
        )
    elapsed = time.perf_counter() - start
    lines.append(
        f"embedder: {'none (lexical only)' if embedder is None else 'all-MiniLM-L6-v2'}; "
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}; {elapsed:.0f} s"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
