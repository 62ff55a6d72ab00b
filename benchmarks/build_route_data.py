"""Build `datasets/routes/` (train.jsonl, test.jsonl): prompts labelled with their intent.

    .venv/bin/python benchmarks/build_route_data.py [--seed 10]

Intents: `factual` (a question the corpus answers), `structured` (a question whose answer must be
JSON), `arithmetic` (a calculation, for the calculator tool), `chitchat` (greetings, thanks, small
talk) and `out_of_scope` (requests the workbench should decline: bookings, weather, poems, advice).

- factual: questions of the repository's `squad_disfl` (disfluent SQuAD) and
  `knowledge_conflicts` (Natural Questions) datasets, grouped by source paragraph.
- structured: other paragraphs' questions, each wrapped in one of the JSON request templates below.
- arithmetic, chitchat, out_of_scope: templates filled with seeded random slots.

The split is by group, seeded: a paragraph or a template sits on one side only, so the test side
measures routing of phrasings the router (and any threshold fitted on train) has never seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "datasets" / "routes"
INTENTS = ("factual", "structured", "arithmetic", "chitchat", "out_of_scope")
TEST_SHARE = 0.4

STRUCTURED = [
    "{q} Answer as a JSON object.",
    "Return JSON with the fields answer and found for this question: {q}",
    "Give me a JSON object with the answer to: {q}",
    '{q} Reply with JSON only, in the form {{"answer": ...}}.',
    "As structured data (JSON), tell me: {q}",
    'Output a JSON record answering the question "{q}"',
    "I need machine-readable JSON for this: {q}",
    "Fill in a JSON object {{answer, found}} for: {q}",
]
ARITHMETIC = [
    "What is {a} times {b}?",
    "Compute ({a} + {b}) * {c}",
    "How much is {a} divided by {b}?",
    "What's {a} plus {b} minus {c}?",
    "Calculate {a} to the power of {c}.",
    "If I have {a} apples and eat {c}, how many are left?",
    "What is {c} percent of {a}?",
    "Add {a}, {b} and {c} together.",
    "{a} * {b} = ?",
    "Multiply {b} by {c} and then subtract {a}.",
    "What do you get when you divide {b} by {c}?",
    "Work out {a} - {b} for me.",
    "Three items cost {a}, {b} and {c} dollars; what is the total?",
    "What is the remainder of {a} divided by {c}?",
]
CHITCHAT = [
    "{hi}!",
    "{hi}, how are you today?",
    "Thanks, that was really helpful{end}",
    "{hi}, who am I talking to?",
    "What's your name{end}",
    "Tell me a little about yourself{end}",
    "Nice to meet you{end}",
    "Good {time}! How's it going?",
    "Have a great {time}{end}",
    "You're awesome, thank you{end}",
    "How has your {time} been?",
    "Bye for now{end}",
    "Can we just chat for a bit{end}",
    "Ok cool, thanks {name}{end}",
]
OUT_OF_SCOPE = [
    "Write a poem about {thing}.",
    "Book me a flight to {city} next {day}.",
    "What's the weather going to be like in {city} on {day}?",
    "Order a pizza with {topping} to my house.",
    "Which stock should I buy this {day}?",
    "Recommend a good {genre} movie for tonight.",
    "Play some {genre} music.",
    "I have a pain in my {body}; what medicine should I take?",
    "Set an alarm for 7 am on {day}.",
    "Translate 'good {time}' into {language}.",
    "Write my homework essay about {thing}.",
    "Send an email to my boss saying I'm sick on {day}.",
    "Who will win the {sport} game this {day}?",
    "Find me a cheap hotel in {city}.",
]
SLOTS = {
    "hi": ["Hi", "Hello", "Hey there", "Good morning", "Hiya", "Greetings", "Yo", "Howdy"],
    "end": ["!", ".", " :)", "", "!!"],
    "time": ["morning", "evening", "day", "weekend", "afternoon"],
    "name": ["buddy", "friend", "bot", "mate", "pal"],
    "thing": ["the ocean", "autumn leaves", "my cat", "friendship", "the moon", "coffee", "trains"],
    "city": ["Paris", "Tokyo", "Nairobi", "Lima", "Oslo", "Denver", "Mumbai", "Cairo"],
    "day": ["Monday", "Friday", "weekend", "Tuesday", "Sunday", "week"],
    "topping": ["mushrooms", "pepperoni", "extra cheese", "olives", "pineapple"],
    "genre": ["jazz", "horror", "comedy", "classical", "hip hop", "sci-fi"],
    "body": ["back", "knee", "head", "stomach", "shoulder"],
    "language": ["French", "Japanese", "Spanish", "German", "Swahili"],
    "sport": ["football", "basketball", "cricket", "tennis", "hockey"],
}
PER_TEMPLATE = 9  # filled prompts per template: 14 templates -> ~126 rows per templated intent


def _row_id(intent: str, text: str) -> str:
    return f"{intent}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _questions(rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """(group, question) per paragraph, both datasets, answerable questions only."""
    by_doc: dict[str, list[tuple[str, str]]] = {}
    for name in ("squad_disfl", "knowledge_conflicts"):
        for q in _read(REPO / "datasets" / name / "questions.jsonl"):
            if q.get("answerable", True) and q.get("gold_doc_ids"):
                group = f"{name}:{q['gold_doc_ids'][0]}"
                by_doc.setdefault(group, []).append((name, " ".join(q["question"].split())))
    return by_doc


def _fill(template: str, rng: random.Random) -> str:
    numbers = {"a": rng.randint(10, 999), "b": rng.randint(2, 99), "c": rng.randint(2, 9)}
    slots = {k: rng.choice(v) for k, v in SLOTS.items()}
    return template.format(**numbers, **slots)


def build(seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    docs = _questions(rng)
    groups = sorted(docs)
    rng.shuffle(groups)
    factual_groups, structured_groups = groups[:100], groups[100:180]
    for group in factual_groups:
        source, question = rng.choice(docs[group])
        rows.append({"text": question, "intent": "factual", "source": f"datasets:{source}", "group": group})
    for i, group in enumerate(structured_groups):
        source, question = rng.choice(docs[group])
        template = i % len(STRUCTURED)
        text = STRUCTURED[template].format(q=question)
        rows.append(
            {
                "text": text,
                "intent": "structured",
                "source": f"template+datasets:{source}",
                "group": f"structured:t{template}",
            }
        )
    for intent, templates in (("arithmetic", ARITHMETIC), ("chitchat", CHITCHAT), ("out_of_scope", OUT_OF_SCOPE)):
        for t, template in enumerate(templates):
            seen: set[str] = set()
            for _ in range(PER_TEMPLATE * 4):
                text = _fill(template, rng)
                if text not in seen:
                    seen.add(text)
                    rows.append({"text": text, "intent": intent, "source": "template", "group": f"{intent}:t{t}"})
                if len(seen) == PER_TEMPLATE:
                    break
    # The split: whole groups, seeded, about TEST_SHARE of each intent's groups on the test side.
    test_groups: set[str] = set()
    for intent in INTENTS:
        intent_groups = sorted({r["group"] for r in rows if r["intent"] == intent})
        rng.shuffle(intent_groups)
        test_groups.update(intent_groups[: max(1, round(len(intent_groups) * TEST_SHARE))])
    unique: dict[str, dict] = {}
    for r in rows:
        unique.setdefault(r["text"], r | {"id": _row_id(r["intent"], r["text"])})
    out = [
        {"id": r["id"], "text": r["text"], "intent": r["intent"], "source": r["source"], "group": r["group"]}
        | {"split": "test" if r["group"] in test_groups else "train"}
        for r in unique.values()
    ]
    return sorted(out, key=lambda r: (r["split"], r["intent"], r["id"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    rows = build(args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        part = [r for r in rows if r["split"] == split]
        with (OUT / f"{split}.jsonl").open("w") as fh:
            for r in part:
                fh.write(json.dumps({k: v for k, v in r.items() if k != "split"}) + "\n")
        counts = Counter(r["intent"] for r in part)
        print(f"{split}: {len(part)} rows", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
