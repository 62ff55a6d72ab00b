"""Build `datasets/safety/` (train.jsonl, test.jsonl): labelled harmful and benign *answers*.

    .venv/bin/python benchmarks/build_safety_data.py [--wheels DIR] [--seed 10]

Harmful and benign answers labelled by people are read out of PyRIT's pinned wheel (fetched
with `pip download --no-deps` into .workbench/guard-wheels by `build_guard_data.wheel`, never
installed):

- `jailbreak/many_shot_examples.json`: 400 (request, answer) pairs, each answer labelled
  "Harmful" or "Not harmful" with a reason;
- `scorer_evals/harm/*.csv`: answers scored 0-1 for one harm category by a person (hate speech,
  violence, self-harm, sexual, privacy, exploits, information integrity, representational):
  >= 0.5 is harmful, 0 is benign, 0.25 (borderline) is left out;
- `scorer_evals/objective/*.csv`: whether an answer achieved a harmful objective (1 harmful,
  0 benign: refusals and safe completions);
- `scorer_evals/refusal_scorer/refusal.csv`: refusals (benign).

Benign answers: sentences of the repository's own datasets (knowledge_conflicts' sentence
answers, wiki_summaries and squad_disfl passages, 1-3 sentences each), and generated benign
look-alikes (`_safety_lookalikes.py`): answers *about* weapons history, medicine labels,
security concepts, violent history, crime and law, chemical safety, crisis support, fiction.

The split is by group, seeded: one harmful objective (all answers to it, from any file), one
source document, one look-alike template sits on one side only. garak's data, and PyRIT's copy
of it (`seed_datasets/local/garak/`), is never read.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import sys
import zipfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _safety_lookalikes import lookalikes  # noqa: E402
from build_guard_data import wheel  # noqa: E402

from workbench.core.text import split_sentences  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "datasets" / "safety"
EVALS = "pyrit/datasets/scorer_evals/"
TEST_FRACTION = 0.3
# Files that repeat rows of the single-score files (multi-rater copies) or are too small to matter.
SKIP = ("_multi_score.csv", "mini_hate_speech.csv")
BENIGN_PER_DATASET = 250

Row = dict[str, str | int]


def _h(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()[:10]


def _csv(zf: zipfile.ZipFile, path: str) -> list[dict[str, str]]:
    lines = zf.read(path).decode("utf-8").splitlines()
    start = 1 if lines and lines[0].startswith("#") else 0  # a "# dataset_version=..." line
    return list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))


def _row(text: str, label: int, kind: str, source: str, group: str) -> Row:
    return {"text": text.strip(), "label": label, "kind": kind, "source": source, "group": group}


def many_shot(zf: zipfile.ZipFile) -> list[Row]:
    out = []
    for item in json.loads(zf.read("pyrit/datasets/jailbreak/many_shot_examples.json")):
        verdict = item["category"].strip().strip("*'\"").lower()
        harmful = verdict.startswith("harmful")
        if not harmful and not verdict.startswith("not"):
            continue  # "Answer: ..." rows with no clear verdict
        out.append(
            _row(
                item["assistant"],
                int(harmful),
                "harmful" if harmful else "benign",
                "pyrit/many_shot",
                f"objective:{_h(item['user'])}",
            )
        )
    return out


def scorer_evals(zf: zipfile.ZipFile) -> list[Row]:
    out = []
    for path in sorted(n for n in zf.namelist() if n.startswith(EVALS) and n.endswith(".csv")):
        if path.endswith(SKIP) or "/sample/" in path or "refusal_extra" in path:
            continue
        part = path[len(EVALS) :]
        for item in _csv(zf, path):
            score_key = "human_score_1" if "human_score_1" in item else "human_score"
            answer, objective = (item.get("assistant_response") or "").strip(), item.get("objective") or ""
            if not answer or item.get(score_key) in (None, ""):
                continue
            score = float(item[score_key])
            if part.startswith("refusal_scorer/"):
                if score != 1:
                    continue  # only refusals: a compliant answer to a harmful objective is unlabelled for harm
                out.append(_row(answer, 0, "benign", f"pyrit/{part}", f"objective:{_h(objective)}"))
                continue
            if 0 < score < 0.5:
                continue
            harmful = int(score >= 0.5)
            kind = "harmful" if harmful else "benign"
            out.append(_row(answer, harmful, kind, f"pyrit/{part}", f"objective:{_h(objective)}"))
    return out


def _snippets(text: str, rng: random.Random) -> list[str]:
    sentences = [s for s in split_sentences(" ".join(text.split())) if 20 <= len(s) <= 400]
    out, i = [], 0
    while i < len(sentences):
        n = rng.randint(1, 3)
        out.append(" ".join(sentences[i : i + n]))
        i += n
    return out


def repo_benign(rng: random.Random) -> list[Row]:
    out: list[Row] = []
    data = REPO / "datasets"
    answers = [json.loads(line) for line in (data / "knowledge_conflicts" / "sentence_answers.jsonl").open()]
    rng.shuffle(answers)
    for item in answers[:BENIGN_PER_DATASET]:
        out.append(_row(item["supported"], 0, "benign", "knowledge_conflicts", f"doc:{item['question_id']}"))
    for name in ("wiki_summaries", "squad_disfl"):
        docs = [json.loads(line) for line in (data / name / "corpus.jsonl").open()]
        rng.shuffle(docs)
        rows = [_row(s, 0, "benign", name, f"doc:{d['id']}") for d in docs for s in _snippets(d["text"], rng)[:2]]
        out.extend(rows[:BENIGN_PER_DATASET])
    return out


def generated() -> list[Row]:
    return [_row(text, 0, "lookalike", f"generated/{cat}", f"template:{tid}") for cat, tid, text in lookalikes()]


def split(rows: list[Row], seed: int) -> tuple[list[Row], list[Row]]:
    """Whole groups to one side; a group's label mix decides nothing, so each side sees both."""
    groups = sorted({str(r["group"]) for r in rows})
    random.Random(seed).shuffle(groups)
    test_groups = set(groups[: round(len(groups) * TEST_FRACTION)])
    train = [r for r in rows if r["group"] not in test_groups]
    test = [r for r in rows if r["group"] in test_groups]
    return train, test


def write(path: Path, rows: list[Row], prefix: str) -> None:
    with path.open("w") as fh:
        for i, row in enumerate(rows):
            fh.write(json.dumps({"id": f"{prefix}-{i:04d}", **row}, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=REPO / ".workbench" / "guard-wheels")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    args.wheels.mkdir(parents=True, exist_ok=True)
    with wheel("pyrit", args.wheels) as zf:
        rows = many_shot(zf) + scorer_evals(zf)
    rows += repo_benign(random.Random(args.seed)) + generated()
    seen: set[str] = set()
    unique = []
    for row in rows:  # the same answer in two files keeps its first label
        key = _h(str(row["text"]))
        if key not in seen and len(str(row["text"])) >= 10:
            seen.add(key)
            unique.append(row)
    train, test = split(unique, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "train.jsonl", train, "train")
    write(OUT / "test.jsonl", test, "test")
    for name, part in (("train", train), ("test", test)):
        counts = Counter(str(r["kind"]) for r in part)
        print(f"{name}: {len(part)} rows " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
