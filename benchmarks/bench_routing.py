"""Routing by intent, cost and complexity (issue 10 §4): route accuracy, and model selection's
cost saved against always-strong and quality kept.

    .venv/bin/python benchmarks/bench_routing.py [CONFIG] [--questions 40] [--card FILE] [--fit-router]

1. Route accuracy of CONFIG's router (default experiments/routing.yaml) on datasets/routes/test.jsonl
   only: overall, per intent and a confusion matrix. `--fit-router` first prints utterances and a
   threshold fitted on train.jsonl only (one medoid per group, then the best train accuracy).
2. Model selection on the factual route: answerable squad_disfl questions, split by paragraph
   (seeded) into a train half and a test half. Every question is answered by each candidate
   through the real pipeline (real retrieval, the real llama.cpp model); the complexity weights
   and the threshold are fitted on train (threshold: the cheapest whose train quality keeps >= 95%
   of always-strong's, RouteLLM's operating point), then always-strong, always-weak and the
   complexity policy are scored on test by token F1 and costed with real token counts. The
   complexity pipeline is then run end to end on test to check it picks and answers as scored.
   `--card` writes the measured model card (cost, p50/p95 latency, train quality per route).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from workbench.core.config import load_yaml  # noqa: E402
from workbench.core.dataset import load_dataset  # noqa: E402
from workbench.core.schema import ComplexityConfig, PipelineConfig, RoutingConfig, SelectionConfig  # noqa: E402
from workbench.core.stage import MemoryStageCache  # noqa: E402
from workbench.core.state import RequestState  # noqa: E402
from workbench.evaluation.metrics.answer import token_f1_score  # noqa: E402
from workbench.routing import (  # noqa: E402
    SemanticRouter,
    complexity_score,
    fit_complexity,
    load_route_set,
    request_features,
    route_accuracy,
)
from workbench.session import Workbench  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "datasets" / "routes"
ROUTE = "factual"
KEEP = 0.95  # RouteLLM's operating point: quality kept at >= 95% of the strong model's
ROUTELLM = "RouteLLM (Ong et al., 2024): -85% cost at 95% of GPT-4's quality on MT-Bench (GPT-4 vs Mixtral 8x7B)"


# --- 1. route accuracy ---------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fit_router(routing: RoutingConfig, embedder: object, per_intent: int = 12) -> None:
    """Print utterances (train medoids, one per group, at most `per_intent`) and a threshold
    fitted on the other train rows."""
    train = load_route_set(ROUTES / "train.jsonl")
    vectors = np.asarray(embedder.embed([r.text for r in train]), dtype=np.float32)  # type: ignore[attr-defined]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen: dict[str, list[int]] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(train):
        groups.setdefault((r.intent, r.group), []).append(i)
    # Groups in a seeded, name-independent order, so factual medoids mix both source datasets.
    for (intent, _), members in sorted(groups.items(), key=lambda kv: (kv[0][0], _digest(kv[0][1]))):
        if len(chosen.setdefault(intent, [])) < per_intent:
            centroid = vectors[members].mean(axis=0)
            chosen[intent].append(members[int(np.argmax(vectors[members] @ centroid))])
    used = {i for ids in chosen.values() for i in ids}
    utt_vecs = {intent: vectors[ids] for intent, ids in chosen.items()}
    rest = [i for i in range(len(train)) if i not in used]
    best_scores = []
    for i in rest:
        sims = {intent: float((v @ vectors[i]).max()) for intent, v in utt_vecs.items()}
        top = max(sims, key=sims.__getitem__)
        best_scores.append((top, sims[top], train[i].intent))
    grid = [t / 100 for t in range(0, 91)]
    accs = [np.mean([(top if s >= t else routing.default) == gold for top, s, gold in best_scores]) for t in grid]
    # The highest threshold at the best accuracy: unlike-anything prompts then fall to the default.
    threshold = max(t for t, a in zip(grid, accs, strict=True) if a == max(accs))
    print(
        f"fitted on train ({len(rest)} rows not used as utterances): threshold {threshold} (accuracy {max(accs):.3f})"
    )
    print(yaml.safe_dump({i: [train[j].text for j in ids] for i, ids in chosen.items()}, sort_keys=False, width=200))


def bench_route_accuracy(config: PipelineConfig, embedder: object) -> None:
    test = load_route_set(ROUTES / "test.jsonl")
    router = SemanticRouter(config.routing, embedder)  # type: ignore[arg-type]
    predicted = [router.route(r.text)[0] for r in test]
    overall, per_intent, confusion = route_accuracy([r.intent for r in test], predicted)
    print(f"\n## Route accuracy, datasets/routes/test.jsonl ({len(test)} rows), threshold {config.routing.threshold}")
    print(f"overall {overall:.3f}")
    labels = sorted({*confusion, *predicted})
    print("| gold \\ predicted | " + " | ".join(labels) + " | accuracy |")
    print("|---" * (len(labels) + 2) + "|")
    for gold in sorted(confusion):
        cells = " | ".join(str(confusion[gold].get(p, 0)) for p in labels)
        print(f"| {gold} | {cells} | {per_intent[gold]:.3f} |")


# --- 2. model selection ----------------------------------------------------------------------
def _split(doc_id: str) -> str:
    return "train" if int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def factual_questions(n: int) -> dict[str, list[tuple[str, str]]]:
    """(question, gold) per side, `n` a side, answerable squad_disfl questions, split by paragraph."""
    data = load_dataset(REPO / "datasets" / "squad_disfl")
    out: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for q in data.questions:
        if q.answerable and q.answer and q.gold_doc_ids:
            side = out[_split(q.gold_doc_ids[0])]
            if len(side) < n:
                side.append((q.question, q.answer))
    return out


def selection_config(config: PipelineConfig, selection: SelectionConfig) -> PipelineConfig:
    """CONFIG with one route, the factual one with `selection`, and no guards (not measured here)."""
    route = config.routing.routes[ROUTE].model_copy(update={"selection": selection})
    routing = RoutingConfig(default=ROUTE, threshold=config.routing.threshold, routes={ROUTE: route})
    return config.model_copy(
        update={"routing": routing, "guardrails": config.guardrails.model_copy(update={"input": [], "output": []})}
    )


def answer_all(wb: Workbench, questions: list[tuple[str, str]]) -> list[RequestState]:
    return [wb.ask(q, raise_on_block=False) for q, _ in questions]


def score(states: list[RequestState], questions: list[tuple[str, str]]) -> list[float]:
    return [token_f1_score(s.answer or "", gold) for s, (_, gold) in zip(states, questions, strict=True)]


def fit_threshold(
    scores: list[float], f1: dict[str, list[float]], cost: dict[str, list[float]], weak: str, strong: str
) -> float:
    """The threshold with the lowest train cost whose train quality keeps >= KEEP of always-strong's."""
    target = KEEP * float(np.mean(f1[strong]))
    best = (float("inf"), 0.0)
    for t in sorted({0.0, 1.0001, *scores}):
        pick = [strong if s >= t else weak for s in scores]
        quality = float(np.mean([f1[m][i] for i, m in enumerate(pick)]))
        spent = sum(cost[m][i] for i, m in enumerate(pick))
        if quality >= target and spent < best[0]:
            best = (spent, t)
    return min(best[1], 1.0)


def bench_selection(config: PipelineConfig, n: int, card_path: Path | None) -> None:
    base = config.routing.routes[ROUTE].selection
    assert base is not None, f"route {ROUTE!r} of the config needs a selection block"
    weak, strong = base.models[0], base.models[-1]
    questions = factual_questions(n)
    cache = MemoryStageCache()
    states: dict[str, dict[str, list[RequestState]]] = {}
    seconds: dict[str, float] = {}
    for model in (weak, strong):
        fixed = SelectionConfig(policy="fixed", models=[model])
        with Workbench(selection_config(config, fixed), cache=cache, root=REPO) as wb:
            wb.ingest()
            wb.warm_up()
            start = time.perf_counter()
            states[model] = {side: answer_all(wb, qs) for side, qs in questions.items()}
            seconds[model] = time.perf_counter() - start
    f1 = {side: {m: score(states[m][side], questions[side]) for m in (weak, strong)} for side in questions}
    cost = {side: {m: [s.cost for s in states[m][side]] for m in (weak, strong)} for side in questions}
    feats = {side: [request_features(s.query, s.chunks) for s in states[weak][side]] for side in questions}
    needs_strong = [fs > fw for fs, fw in zip(f1["train"][strong], f1["train"][weak], strict=True)]
    fitted = fit_complexity(feats["train"], needs_strong)
    train_scores = [complexity_score(fitted, f) for f in feats["train"]]
    threshold = fit_threshold(train_scores, f1["train"], cost["train"], weak, strong)
    fitted = fitted.model_copy(update={"threshold": round(threshold, 4)})
    latencies = {m: [c.latency_s * 1000 for s in states[m]["train"] for c in s.calls] for m in (weak, strong)}
    card = {
        "models": {
            m: {
                "cost_per_1k": round(config.models[m].cost.input_per_1k + config.models[m].cost.output_per_1k, 8),
                "p50_ms": round(statistics.median(latencies[m]), 1),
                "p95_ms": round(float(np.percentile(latencies[m], 95)), 1),
                "quality": {ROUTE: round(float(np.mean(f1["train"][m])), 4)},
            }
            for m in (weak, strong)
        }
    }
    print(
        f"\n## Model selection on route {ROUTE!r}: {len(questions['train'])} train / "
        f"{len(questions['test'])} test squad_disfl questions"
    )
    print(f"answering time: {', '.join(f'{m} {s:.0f} s' for m, s in seconds.items())}")
    print(f"train: strong better on {sum(needs_strong)}/{len(needs_strong)}; fitted complexity block:")
    print(yaml.safe_dump({"complexity": fitted.model_dump(mode="json")}, sort_keys=False))
    print("model card (train figures):")
    print(yaml.safe_dump(card, sort_keys=False))
    if card_path is not None:
        card_path.write_text(yaml.safe_dump(card, sort_keys=False))
    report(fitted, feats["test"], f1["test"], cost["test"], weak, strong)
    end_to_end(config, base, fitted, card, questions["test"], states, cache, weak, strong)


def _row(name: str, quality: float, spent: float, strong_q: float, strong_cost: float, share: float) -> str:
    saved = 1 - spent / strong_cost if strong_cost else 0.0
    kept = quality / strong_q if strong_q else 0.0
    return f"| {name} | {quality:.3f} | {spent:.6f} | {share:.0%} | {saved:+.0%} | {kept:.0%} |"


def report(
    fitted: ComplexityConfig,
    feats: list[dict[str, float]],
    f1: dict[str, list[float]],
    cost: dict[str, list[float]],
    weak: str,
    strong: str,
) -> None:
    scores = [complexity_score(fitted, f) for f in feats]
    strong_q, strong_cost = float(np.mean(f1[strong])), sum(cost[strong])
    print(f"\n## Test side: token F1 and cost (weak {weak}, strong {strong})")
    print("| selection | token F1 | cost ($) | share strong | cost saved vs always-strong | quality kept |")
    print("|---|---|---|---|---|---|")

    def line(name: str, pick: list[str]) -> str:
        q = float(np.mean([f1[m][i] for i, m in enumerate(pick)]))
        spent = sum(cost[m][i] for i, m in enumerate(pick))
        return _row(name, q, spent, strong_q, strong_cost, pick.count(strong) / len(pick))

    n = len(scores)
    print(line("always-strong", [strong] * n))
    print(line("always-weak", [weak] * n))
    print(
        line(
            f"complexity (threshold {fitted.threshold:.3f}, fitted on train)",
            [strong if s >= fitted.threshold else weak for s in scores],
        )
    )
    for t in (0.3, 0.5, 0.7):
        print(line(f"complexity at threshold {t}", [strong if s >= t else weak for s in scores]))
    print(
        line(
            "oracle (the better per question; upper bound)",
            [strong if f1[strong][i] > f1[weak][i] else weak for i in range(n)],
        )
    )
    print(ROUTELLM)


def end_to_end(
    config: PipelineConfig,
    base: SelectionConfig,
    fitted: ComplexityConfig,
    card: dict,
    test: list[tuple[str, str]],
    states: dict,
    cache: MemoryStageCache,
    weak: str,
    strong: str,
) -> None:
    """The complexity pipeline itself on test: its picks and answers must equal the scored ones."""
    data = base.model_dump(mode="json") | {"policy": "complexity", "figures": card["models"]}
    selection = SelectionConfig.model_validate(data | {"complexity": fitted.model_dump(mode="json")})
    with Workbench(selection_config(config, selection), cache=cache, root=REPO) as wb:
        start = time.perf_counter()
        ran = answer_all(wb, test)
        took = time.perf_counter() - start
    picks = Counter(s.model_choice.model for s in ran if s.model_choice)
    same = sum(s.answer == states[s.model_choice.model]["test"][i].answer for i, s in enumerate(ran) if s.model_choice)
    print(
        f"\nend to end, complexity pipeline on test: picks {dict(picks)}; "
        f"answers equal to the scored ones {same}/{len(ran)}; "
        f"{took:.1f} s (generator outputs reused from the stage cache: same model, same key)"
    )
    print("example reason:", ran[0].model_choice.reason if ran[0].model_choice else None)
    for policy, extra in (("cheapest_within", {"quality_delta": 0.02}), ("latency_budget", {"p95_ms": 500.0})):
        chosen = SelectionConfig(policy=policy, models=base.models, figures=card["models"], **extra)
        with Workbench(selection_config(config, chosen), cache=cache, root=REPO) as wb:
            state = wb.ask(test[0][0], raise_on_block=False)
        print(f"{policy}: {state.model_choice.reason if state.model_choice else None}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(REPO / "experiments" / "routing.yaml"))
    parser.add_argument("--questions", type=int, default=40, help="squad_disfl questions per side")
    parser.add_argument("--card", type=Path, default=None, help="write the measured model card here")
    parser.add_argument("--fit-router", action="store_true")
    parser.add_argument("--skip-selection", action="store_true")
    args = parser.parse_args()
    config = load_yaml(PipelineConfig, args.config)
    from workbench.models.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(config.embedder)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.fit_router:
        fit_router(config.routing, embedder)
    bench_route_accuracy(config, embedder)
    if not args.skip_selection:
        bench_selection(config, args.questions, args.card)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
