"""Build datasets/two_hop/: bridge questions over wiki_summaries that need two documents.

A question names document A by its title and describes document B by B's own first-sentence
definition, where B's title appears verbatim in A's text and nowhere in the question:

    A = "The Beatles" (its summary names "Liverpool")
    B = "Liverpool"   ("Liverpool is a cathedral, university and port city in Merseyside, England.")
    Q = "Which cathedral, university and port city in Merseyside, England does the summary of
         The Beatles mention?"                                           answer: "Liverpool"

Mentions are found by plain string matching of titles against A's words, not by the graph's
entity extractor, so the set does not favour the extractor's notion of an entity. Gold per
question: `gold_doc_ids = [A, B]`; `evidence[0]` is the mention of B's title in A (hop 1),
`evidence[1]` B's defining first sentence (hop 2).

The corpus is the questions' documents plus a seeded sample of other wiki_summaries documents as
distractors. Deterministic (seed 0). Run from the repository root:

    .venv/bin/python benchmarks/build_two_hop.py [--questions 200] [--distractors 1600]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

from workbench.core.dataset import Document, load_corpus

WIKI = Path("datasets/wiki_summaries/corpus.jsonl")
OUT = Path("datasets/two_hop")
MAX_TITLE_WORDS = 6
# "X is a/an/the <definition>." -- the definition ends at the first full stop.
_DEFINITION = (
    r"^(?:The\s+)?{title}(?:\s*\([^)]*\))?\s*,?\s+(?:is|was|are|were)\s+(?:(?:a|an|the)\s+)?(?P<desc>[^.;]+)\."
)


def _first_sentence(text: str) -> tuple[int, int]:
    m = re.search(r"\.(?:\s|$)", text)
    return 0, (m.end() if m else len(text))


def _definition(doc: Document) -> str | None:
    assert doc.title is not None
    s, e = _first_sentence(doc.text)
    m = re.match(_DEFINITION.format(title=re.escape(doc.title)), doc.text[s:e])
    if not m:
        return None
    desc = " ".join(m.group("desc").split())
    words = desc.split()
    if not 3 <= len(words) <= 16 or doc.title.lower() in desc.lower():
        return None
    return desc


_CUE_STOP = frozenset(
    {"of", "in", "on", "at", "from", "for", "by", "with", "to", "that", "which", "who", "whose", "where"}
    | {"known", "located", "founded", "based"}
)
_CUE_TRIM = frozenset({"and", "or", "the", "a", "an"})


def short_cue(definition: str) -> str:
    """The definition cut before its first comma or preposition, at most 4 words ("capital and
    largest city of Russia, ..." -> "capital and largest city"): a type, not an identity."""
    words: list[str] = []
    for word in definition.split()[:4]:
        if word.lower() in _CUE_STOP:
            break
        words.append(word.rstrip(","))
        if word.endswith(","):
            break
    while words and words[-1].lower() in _CUE_TRIM:
        words.pop()
    return " ".join(words)


def _mentions(doc: Document, titles: dict[str, Document]) -> list[tuple[str, int, int]]:
    """(title, start, end) of other documents' titles named word-for-word in `doc.text`."""
    words = [(m.start(), m.end()) for m in re.finditer(r"[\w'’\-]+", doc.text)]
    found: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_TITLE_WORDS, len(words) - i), 0, -1):
            start, end = words[i][0], words[i + n - 1][1]
            name = doc.text[start:end]
            if name in titles and name != doc.title:
                found.append((name, start, end))
                i += n
                break
        else:
            i += 1
    return found


def _usable_title(title: str) -> bool:
    # A title that is a number, a year or one short common word makes a mention that means
    # nothing ("1", "Art"); names of two words or more, or one capitalised word of 6+ letters.
    if not title[:1].isupper() or any(ch.isdigit() for ch in title):
        return False
    return " " in title or len(title) >= 6


def build(n_questions: int, n_distractors: int, seed: int = 0) -> tuple[list[Document], list[dict]]:
    docs = load_corpus(WIKI)
    counts = Counter(d.title for d in docs)
    titles = {d.title: d for d in docs if d.title and counts[d.title] == 1 and _usable_title(d.title)}
    definitions = {t: desc for t, d in titles.items() if (desc := _definition(d)) is not None}
    rng = random.Random(seed)
    order = list(docs)
    rng.shuffle(order)
    questions: list[dict] = []
    used: set[str] = set()
    for a in order:
        if len(questions) >= 2 * n_questions or not a.title or a.id in used:
            continue
        options = [
            (t, s, e)
            for t, s, e in _mentions(a, titles)
            if t in definitions and titles[t].id not in used and t.lower() not in a.title.lower()
        ]
        if not options:
            continue
        title_b, start, end = rng.choice(options)
        b = titles[title_b]
        question = f"Which {definitions[title_b]} does the summary of {a.title} mention?"
        if title_b.lower() in question.lower():
            continue
        used.update({a.id, b.id})
        hop2 = _first_sentence(b.text)
        row = {
            "id": f"2hop-{len(questions) // 2:03d}-full",
            "question": question,
            "answer": title_b,
            "answerable": True,
            "evidence": [
                {"doc_id": a.id, "start": start, "end": end},
                {"doc_id": b.id, "start": hop2[0], "end": hop2[1]},
            ],
            "gold_doc_ids": [a.id, b.id],
        }
        # The short form names only B's type; kept when no other document A mentions shares it,
        # so the answer stays unique.
        cue = short_cue(definitions[title_b])
        rivals = [t for t, _, _ in options if t != title_b and short_cue(definitions[t]).lower() == cue.lower()]
        short = {**row, "id": row["id"].replace("-full", "-short")}
        short["question"] = f"Which {cue} does the summary of {a.title} mention?"
        questions.append(row)
        questions.append(short if cue and not rivals else {**row, "id": row["id"].replace("-full", "-dup")})
    others = sorted((d for d in docs if d.id not in used), key=lambda d: d.id)
    corpus = sorted([d for d in docs if d.id in used] + rng.sample(others, n_distractors), key=lambda d: d.id)
    return corpus, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--distractors", type=int, default=1600)
    args = parser.parse_args()
    corpus, questions = build(args.questions, args.distractors)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "corpus.jsonl").open("w") as f:
        for d in corpus:
            f.write(json.dumps(d.model_dump(exclude_none=True), ensure_ascii=False) + "\n")
    with (OUT / "questions.jsonl").open("w") as f:
        for q in questions:
            if not q["id"].endswith("-dup"):
                f.write(json.dumps(q, ensure_ascii=False) + "\n")
    forms = Counter(q["id"].rsplit("-", 1)[1] for q in questions)
    print(f"{forms['full']} full, {forms['short']} short questions, {len(corpus)} documents -> {OUT}/")


if __name__ == "__main__":
    main()
