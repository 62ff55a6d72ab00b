"""Sweeps against a hand-written loop, repeat cost, and early stopping (issue 7).

1. `loop`: the loop a data scientist writes today (llama-index `VectorStoreIndex` per variant,
   `llama_cpp.Llama` loaded per variant, ragas non-LLM metrics, one MLflow run per variant)
   over the 12 variants of experiments/sweeps/quickstart.yaml × the first N squad_disfl
   questions, then `run_sweep` on the same spec and questions, cold, also logging to MLflow.
2. `repeat`: the same sweep again in the same root (the journal resumes it), and again after
   deleting only the journal (every row recomputed from the stage cache).
3. `halving`: a 12-variant grid written here (generation.model × retrieval.top_k ×
   retrieval.mode) on more questions, `grid` vs `halving`, cold in separate roots; then the
   halving rule replayed over the grid's rows (answers are deterministic at temperature 0) for
   other `initial_questions` / `alpha` / `factor` settings.

Each measured run gets a fresh temporary root (datasets/ and experiments/ symlinked in), so
caches start cold. Prints figures with the load average; gates nothing; ratios within one run.
Run: .venv/bin/python benchmarks/bench_sweep.py --part loop|repeat|loop+repeat|halving|all [--limit 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.pop("MLFLOW_TRACKING_URI", None)

REPO = Path(__file__).resolve().parents[1]
SPEC = "experiments/sweeps/quickstart.yaml"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f}"


def fresh_root(parent: Path, name: str) -> Path:
    root = parent / name
    root.mkdir()
    for folder in ("datasets", "experiments"):
        (root / folder).symlink_to(REPO / folder)
    return root


# --- 1. the hand-written loop ---------------------------------------------------------------


def _embed_model(path: Path, batch_size: int) -> Any:
    """A small llama-index adapter over sentence-transformers (no llama-index embedding
    package is installed), the same model and normalisation the workbench uses."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr
    from sentence_transformers import SentenceTransformer

    class STEmbedding(BaseEmbedding):
        _model: Any = PrivateAttr()

        def __init__(self) -> None:
            super().__init__(model_name=str(path), embed_batch_size=batch_size)
            self._model = SentenceTransformer(str(path), device="cpu")

        def _encode(self, texts: list[str]) -> list[list[float]]:
            vecs = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
            return [v.tolist() for v in vecs]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encode([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encode(texts)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return STEmbedding()


def _bm25_retriever(nodes: list[Any], k: int) -> Any:
    """bm25s behind llama-index's retriever interface (llama-index-retrievers-bm25 is not
    installed; bm25s is what that package wraps)."""
    import bm25s
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore

    corpus = bm25s.tokenize([n.get_content() for n in nodes], stopwords="en", show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(corpus, show_progress=False)

    class BM25Retriever(BaseRetriever):
        def _retrieve(self, query_bundle: Any) -> list[Any]:
            tokens = bm25s.tokenize([query_bundle.query_str], stopwords="en", show_progress=False)
            ids, scores = bm25.retrieve(tokens, k=min(k, len(nodes)), show_progress=False)
            return [NodeWithScore(node=nodes[int(i)], score=float(s)) for i, s in zip(ids[0], scores[0], strict=True)]

    return BM25Retriever()


def _context(texts: list[str], max_chars: int) -> str:
    """The context exactly as the workbench's prompt renders it, so both sides' prompts match."""
    from workbench.core.state import Chunk
    from workbench.models.generator import render_context

    chunks = tuple(Chunk(chunk_id=str(i), doc_id="", text=t, start=0, end=len(t)) for i, t in enumerate(texts))
    return render_context(chunks, max_chars)


def hand_loop(root: Path, variants: list[Any], questions: list[Any], documents: list[Any]) -> dict[str, Any]:
    """The loop, timed by phase. Returns the totals and per-variant figures."""
    spent: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    import mlflow
    import numpy as np
    from llama_cpp import Llama
    from llama_index.core import Document as LIDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.retrievers import QueryFusionRetriever
    from ragas.metrics.collections import NonLLMStringSimilarity, RougeScore

    from workbench.core.protocols import GenerationRequest
    from workbench.core.resources import resolve_source
    from workbench.core.state import Chunk
    from workbench.models.extractive import ExtractiveModel

    spent["imports"] = time.perf_counter() - t0
    base = variants[0].config
    t = time.perf_counter()
    embed = _embed_model(resolve_source(base.embedder.source), base.embedder.batch_size)
    spent["embedder load (once)"] = time.perf_counter() - t
    t = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'loop_mlflow.db'}")
    mlflow.set_experiment("hand-loop")
    spent["mlflow logging"] += time.perf_counter() - t
    rouge, similarity = RougeScore(), NonLLMStringSimilarity()
    per_variant = []
    prompt_tokens: list[int] = []
    calls = 0
    for variant in variants:
        cfg = variant.config
        r, ep = cfg.retrieval, cfg.models[cfg.generation.model]
        prompt = cfg.prompts[cfg.generation.prompt]
        # Index: chunk like the config, embed every chunk, build the retrievers.
        t = time.perf_counter()
        splitter = SentenceSplitter(chunk_size=cfg.ingestion.chunk_size, chunk_overlap=cfg.ingestion.chunk_overlap)
        nodes = splitter.get_nodes_from_documents([LIDocument(text=d.text, doc_id=d.id) for d in documents])
        index = VectorStoreIndex(nodes, embed_model=embed)
        dense = index.as_retriever(similarity_top_k=r.candidates if r.mode == "hybrid" else r.top_k)
        if r.mode == "dense":
            retriever = dense
        elif r.mode == "bm25":
            retriever = _bm25_retriever(nodes, r.top_k)
        else:
            retriever = QueryFusionRetriever(
                [dense, _bm25_retriever(nodes, r.candidates)],
                llm=MockLLM(),
                mode="reciprocal_rerank",
                similarity_top_k=r.top_k,
                num_queries=1,
                use_async=False,
            )
        spent["index builds"] += time.perf_counter() - t
        # Model: a naive loop loads it per variant.
        t = time.perf_counter()
        llm = None
        if ep.provider == "llama_cpp":
            llm = Llama(
                model_path=str(resolve_source(ep.source)), n_ctx=ep.n_ctx, n_threads=ep.n_threads, verbose=False
            )
        extractive = ExtractiveModel(ep) if ep.provider == "extractive" else None
        spent["model loads"] += time.perf_counter() - t
        scores: dict[str, list[float]] = defaultdict(list)
        for q in questions:
            t = time.perf_counter()
            hits = retriever.retrieve(q.question)
            # The same re-rank as the config: cosine to the query blended with the min-max
            # retrieval score, keep the reranker's top_k.
            qv = np.asarray(embed.get_query_embedding(q.question))
            cos = np.array([np.dot(qv, index.vector_store.get(h.node.node_id)) for h in hits])
            raw = np.array([h.score or 0.0 for h in hits])
            prior = (
                (raw - raw.min()) / (raw.max() - raw.min()) if len(raw) and raw.max() > raw.min() else np.ones_like(raw)
            )
            order = sorted(range(len(hits)), key=lambda i: (-(0.5 * cos[i] + 0.5 * prior[i]), i))
            keep = [hits[i] for i in order][: r.reranker.top_k or len(hits)]
            texts = [h.node.get_content() for h in keep]
            context = _context(texts, cfg.generation.max_context_chars)
            user = prompt.template.format(question=q.question, context=context)
            messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + [
                {"role": "user", "content": user}
            ]
            spent["retrieval + prompt"] += time.perf_counter() - t
            t = time.perf_counter()
            if llm is not None:
                out = llm.create_chat_completion(messages=messages, **ep.params)
                answer = out["choices"][0]["message"]["content"] or ""
                prompt_tokens.append(int(out["usage"]["prompt_tokens"]))
            else:
                chunks = tuple(
                    Chunk(chunk_id=h.node.node_id, doc_id="", text=x, start=0, end=0)
                    for h, x in zip(keep, texts, strict=True)
                )
                answer = extractive.complete(
                    GenerationRequest(question=q.question, chunks=chunks, messages=tuple(messages))
                ).text
            calls += 1
            spent["generation"] += time.perf_counter() - t
            t = time.perf_counter()
            reference = q.answer or "I don't know"
            scores["rouge"].append(asyncio.run(rouge.ascore(reference=reference, response=answer)).value)
            scores["string_similarity"].append(
                asyncio.run(similarity.ascore(reference=reference, response=answer)).value
            )
            spent["scoring"] += time.perf_counter() - t
        del llm, index, retriever
        t = time.perf_counter()
        means = {k: float(np.mean(v)) for k, v in scores.items()}
        with mlflow.start_run(run_name=variant.id):
            mlflow.log_params({k: str(v) for k, v in variant.params.items()})
            mlflow.log_metrics(means)
        spent["mlflow logging"] += time.perf_counter() - t
        per_variant.append({"variant": variant.id, **means})
    spent["total"] = time.perf_counter() - t0
    return {"spent": dict(spent), "calls": calls, "prompt_tokens": prompt_tokens, "per_variant": per_variant}


def part_loop(parent: Path, limit: int) -> dict[str, Any]:
    from workbench.core.config import load_yaml
    from workbench.core.dataset import load_dataset
    from workbench.core.schema import PipelineConfig
    from workbench.sweeps import run_sweep
    from workbench.sweeps.expand import expand
    from workbench.sweeps.spec import load_spec
    from workbench.tracking import MlflowTracker

    spec, base_path = load_spec(REPO / SPEC)
    variants = expand(spec, load_yaml(PipelineConfig, base_path))
    data = load_dataset("squad_disfl", base=REPO)
    questions = data.questions[:limit]
    print(f"[loop] {len(variants)} variants x {len(questions)} questions; {load()}")

    sweep_root = fresh_root(parent, "sweep")
    start = time.perf_counter()
    result = run_sweep(
        SPEC, "squad_disfl", root=sweep_root, limit=limit, tracker=MlflowTracker(sweep_root / "mlflow.db")
    )
    sweep_s = time.perf_counter() - start
    rows = result.rows
    fresh_llama = rows[(rows["model_calls"] > 0) & rows["models"].map(lambda m: "smollm2" in list(m or []))]
    indexes = (
        [p for p in (sweep_root / ".workbench" / "indexes").iterdir()]
        if (sweep_root / ".workbench" / "indexes").exists()
        else []
    )
    print(f"[loop] run_sweep cold (MLflow on): {sweep_s:.1f} s; {load()}")
    print(
        f"[loop]   rows {len(rows)}, model calls {result.spent.model_calls} "
        f"(a loop: {len(variants) * len(questions)}), "
        f"of which smollm2 {len(fresh_llama)}; rows with a cached stage {int((rows['cached_stages'] > 0).sum())}, "
        f"cached stages {int(rows['cached_stages'].sum())}; index folders built {len(indexes)}; "
        f"errors {int(rows['error'].notna().sum())}"
    )
    stage_cols = [c for c in rows.columns if c.startswith("t_")]
    for col in stage_cols:
        print(f"[loop]   sum {col:<22} {rows[col].fillna(0).sum():7.1f} s")
    print(f"[loop]   sum latency_s {rows['latency_s'].sum():.1f} s (2 questions in flight)")
    if len(fresh_llama):
        print(f"[loop]   mean prompt tokens (fresh smollm2 rows, tokens_in): {fresh_llama['tokens_in'].mean():.0f}")
    print(f"[loop]   winner {result.winner}; sweep loop-equivalent quality: {result.note}")
    loop_root = fresh_root(parent, "loop")
    loop = hand_loop(loop_root, variants, questions, data.documents)
    print(f"[loop] hand-written loop: {loop['spent']['total']:.1f} s, {loop['calls']} generator calls; {load()}")
    for phase, seconds in loop["spent"].items():
        if phase != "total":
            print(f"[loop]   {phase:<22} {seconds:7.1f} s")
    llama_tokens = loop["prompt_tokens"]
    print(f"[loop]   mean prompt tokens (smollm2 calls, llama.cpp usage): {statistics.fmean(llama_tokens):.0f}")
    ratio = loop["spent"]["total"] / sweep_s
    print(f"[loop] RATIO loop / sweep = {ratio:.2f}x (target >= 5x: {'met' if ratio >= 5 else 'MISSED'}); {load()}")
    return {"sweep_root": sweep_root, "sweep_s": sweep_s}


# --- 2. repeat cost -------------------------------------------------------------------------


def _startup(root: Path) -> float:
    """What loading the parts costs once imports are done: embedder + GGUF, as run_sweep would."""
    from workbench.core.config import load_yaml
    from workbench.core.resources import resolve_source
    from workbench.core.schema import PipelineConfig
    from workbench.sweeps.spec import load_spec

    _, base_path = load_spec(root / SPEC)
    base = load_yaml(PipelineConfig, base_path)
    start = time.perf_counter()
    from llama_cpp import Llama
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(resolve_source(base.embedder.source)), device="cpu")
    st.encode(["warm"])
    ep = base.models["smollm2"]
    llm = Llama(model_path=str(resolve_source(ep.source)), n_ctx=ep.n_ctx, n_threads=ep.n_threads, verbose=False)
    seconds = time.perf_counter() - start
    del llm, st
    return seconds


def part_repeat(parent: Path, limit: int, first: dict[str, Any] | None) -> None:
    from workbench.sweeps import run_sweep
    from workbench.tracking import MlflowTracker

    if first is None:
        root = fresh_root(parent, "repeat")
        start = time.perf_counter()
        run_sweep(SPEC, "squad_disfl", root=root, limit=limit, tracker=MlflowTracker(root / "mlflow.db"))
        first = {"sweep_root": root, "sweep_s": time.perf_counter() - start}
        print(f"[repeat] first run (cold): {first['sweep_s']:.1f} s; {load()}")
    root, first_s = first["sweep_root"], first["sweep_s"]
    startup = _startup(root)
    print(f"[repeat] start-up (embedder + GGUF load, imports already done): {startup:.1f} s; {load()}")

    start = time.perf_counter()
    resumed = run_sweep(SPEC, "squad_disfl", root=root, limit=limit, tracker=MlflowTracker(root / "mlflow.db"))
    resumed_s = time.perf_counter() - start
    print(
        f"[repeat] journal present: {resumed_s:.2f} s = {resumed_s / first_s:.1%} of the first "
        f"(model calls spent in total still {resumed.spent.model_calls}); {load()}"
    )

    (root / ".workbench" / "sweeps.sqlite").unlink()
    for extra in ("sweeps.sqlite-wal", "sweeps.sqlite-shm"):
        (root / ".workbench" / extra).unlink(missing_ok=True)
    start = time.perf_counter()
    again = run_sweep(SPEC, "squad_disfl", root=root, limit=limit, tracker=MlflowTracker(root / "mlflow.db"))
    again_s = time.perf_counter() - start
    rows = again.rows
    net = max(again_s - startup, 0.0) / max(first_s - startup, 1e-9)
    print(
        f"[repeat] journal deleted: {again_s:.2f} s = {again_s / first_s:.1%} of the first; start-up excluded "
        f"from both: {net:.1%}; model calls {again.spent.model_calls}, rows {len(rows)}, "
        f"cached stages {int(rows['cached_stages'].sum())}, rows with every stage cached "
        f"{int((rows['model_calls'] == 0).sum())}; {load()}"
    )
    for col in [c for c in rows.columns if c.startswith("t_")]:
        print(f"[repeat]   sum {col:<22} {rows[col].fillna(0).sum():7.2f} s")
    print(f"[repeat]   target < 5% of the first (start-up aside): {'met' if net < 0.05 else 'MISSED'}")


# --- 3. early stopping ----------------------------------------------------------------------

HALVING_AXES = {
    # The model, how deep to retrieve, and how: differences exist but are small (see RESULTS).
    "mixed": """\
axes:
  generation.model: [smollm2, extractive]
  retrieval.top_k: [1, 4]
  retrieval.mode: [bm25, dense, hybrid]
""",
    # The extractive baseline only (no LLM, so cheap to run twice cold), with an abstention
    # threshold that makes some variants clearly worse.
    "extractive": """\
axes:
  generation.model: [extractive]
  retrieval.top_k: [1, 4]
  retrieval.mode: [bm25, dense, hybrid]
  models.extractive.min_support: [0.25, 0.6]
""",
}
OBJECTIVE = "token_f1"


def write_spec(root: Path, strategy: str, axes: str, initial: int = 8, factor: int = 2, alpha: float = 0.05) -> Path:
    search = f"search: {{strategy: {strategy}" + (
        f", initial_questions: {initial}, factor: {factor}, alpha: {alpha}}}" if strategy == "halving" else "}"
    )
    path = root / f"issue7-{strategy}.yaml"
    path.write_text(
        f"name: issue7-{strategy}\nbase: experiments/quickstart.yaml\n{HALVING_AXES[axes]}"
        f"objective: {{metric: {OBJECTIVE}}}\nmetrics: [hit_at_k, mrr, exact_match, token_f1, abstention]\n{search}\n"
    )
    return path


def _rank_prune(rows: Any, survivors: list[str], factor: int, alpha: float, *, guard: bool = True) -> list[str]:
    """A proposed rule, replayed here only: keep the best 1/factor by mean on the rung's shared
    questions (classic successive halving), plus any variant the engine's paired test cannot
    tell apart from the best *without* Holm's adjustment (p >= alpha or interval spans 0), so a
    variant that could still be tied is never dropped on rank alone when its evidence is thin.
    `guard=False`: the top 1/factor only (plain successive halving)."""
    import math

    from workbench.sweeps.select import _paired, per_question

    table = per_question(rows, OBJECTIVE, "maximize").reindex(columns=survivors).dropna()
    if len(table) < 5:
        return []
    means = table.mean().sort_values(ascending=False, kind="stable")
    keep = set(means.index[: max(1, math.ceil(len(survivors) / factor))])
    best = str(means.index[0])
    if not guard:
        return [v for v in survivors if v not in keep]
    comparisons = _paired(table, best, [v for v in survivors if v != best], "maximize", alpha, 0)
    unadjusted = (comparisons["p_value"] >= alpha) | (comparisons["ci_high"] >= 0)
    keep |= set(comparisons.loc[unadjusted, "variant"])
    return [v for v in survivors if v not in keep]


def replay_halving(
    rows: Any, variants: list[str], questions: list[str], initial: int, factor: int, alpha: float, rule: str = "engine"
) -> tuple[int, list[str]]:
    """The engine's halving rule (`select.prune` on each rung's shared questions) replayed over
    rows a grid already answered: the rows it would have answered, and the survivors."""
    from workbench.sweeps.select import prune

    survivors, size, answered = list(variants), min(initial, len(questions)), 0
    seen: set[tuple[str, str]] = set()
    while True:
        for v in survivors:
            for q in questions[:size]:
                if (v, q) not in seen:
                    seen.add((v, q))
                    answered += 1
        if size >= len(questions) or len(survivors) <= 1:
            return answered, survivors
        rung = rows[rows["question_id"].isin(questions[:size]) & rows["variant"].isin(survivors)]
        if rule in ("rank", "topk"):
            worse = _rank_prune(rung, survivors, factor, alpha, guard=rule == "rank")
        else:
            worse = prune(rung, survivors, objective=OBJECTIVE, direction="maximize", alpha=alpha, seed=0)
        survivors = [v for v in survivors if v not in worse]
        size = min(size * factor, len(questions))


def part_halving(parent: Path, limit: int, axes: str) -> None:
    from workbench.sweeps import run_sweep

    results = {}
    for strategy in ("grid", "halving"):
        root = fresh_root(parent, f"h-{strategy}")
        spec = write_spec(root, strategy, axes)
        start = time.perf_counter()
        results[strategy] = run_sweep(spec, "squad_disfl", root=root, limit=limit, tracker=None)
        seconds = time.perf_counter() - start
        r = results[strategy]
        print(
            f"[halving] {strategy}: {seconds:.1f} s, model calls {r.spent.model_calls}, rows {len(r.rows)}, "
            f"winner {r.winner}, tied {r.tied}; {load()}"
        )
        if strategy == "halving":
            pruned = (
                r.variants[["variant", "label", "pruned_at_rung"]] if "pruned_at_rung" in r.variants else r.variants
            )
            print(pruned.to_string(index=False))
    grid, halving = results["grid"], results["halving"]
    board = grid.leaderboard.set_index("variant")
    print(
        grid.leaderboard[["rank", "variant", OBJECTIVE, f"{OBJECTIVE}_ci_low", f"{OBJECTIVE}_ci_high"]].to_string(
            index=False
        )
    )
    labels = grid.variants.set_index("variant")["label"]
    ratio = halving.spent.model_calls / grid.spent.model_calls
    same = halving.winner == grid.winner
    tied = halving.winner in grid.tied
    print(
        f"[halving] RATIO model calls halving / grid = {ratio:.1%} "
        f"({halving.spent.model_calls} / {grid.spent.model_calls}); "
        f"rows {len(halving.rows)} / {len(grid.rows)}"
    )
    print(
        f"[halving] grid winner {grid.winner} ({labels.get(grid.winner)}, "
        f"{OBJECTIVE} {board.at[grid.winner, OBJECTIVE]:.3f}); "
        f"halving winner {halving.winner} ({labels.get(halving.winner)}); same: {same}; in the grid's tied list: {tied}"
    )
    met = ratio <= 0.40 and (same or tied)
    print(f"[halving] target <= 40% with the same or a tied winner: {'met' if met else 'MISSED'}; {load()}")

    rows = grid.rows[grid.rows["split"] == "search"]
    replay_grid(rows, list(grid.variants["variant"]), limit, grid.winner, grid.tied)


def replay_grid(rows: Any, variants: list[str], limit: int, winner: str | None, tied: list[str]) -> None:
    """Replays over a grid's rows: other halving settings, at no model cost."""
    from workbench.core.dataset import load_dataset
    from workbench.sweeps.plan import split_questions
    from workbench.sweeps.select import select_winner

    # The engine's rungs are prefixes of its seeded shuffle of the questions (confirm.seed 0).
    search, _ = split_questions(load_dataset("squad_disfl", base=REPO).questions[:limit], 0.0, 0)
    qids = [q.id for q in search]
    print("[halving] replay over the grid rows (rows answered / grid rows, survivors, winner):")
    for rule in ("engine", "rank", "topk"):
        for initial in (5, 8, 12, 16):
            for alpha in (0.05, 0.1, 0.2):
                for factor in (2, 3):
                    answered, survivors = replay_halving(rows, variants, qids, initial, factor, alpha, rule)
                    final = rows[rows["variant"].isin(survivors)]
                    pick = select_winner(
                        final, objective=OBJECTIVE, direction="maximize", constraints=[], metrics=[OBJECTIVE]
                    ).best
                    verdict = "same" if pick == winner else "tied" if pick in tied else "NOT tied"
                    print(
                        f"[halving]   {rule:<6} initial {initial:>2} alpha {alpha:<4} factor {factor}: "
                        f"{answered / len(rows):6.1%}, survivors {len(survivors):>2}, winner {pick} ({verdict})"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["loop", "repeat", "loop+repeat", "halving", "all"], default="all")
    parser.add_argument("--limit", type=int, default=10, help="questions for loop/repeat")
    parser.add_argument("--halving-limit", type=int, default=48, help="questions for the halving grid")
    parser.add_argument("--axes", choices=sorted(HALVING_AXES), default="mixed", help="the halving grid")
    parser.add_argument("--objective", default="token_f1", help="halving objective (replays too)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary roots")
    parser.add_argument("--replay", type=Path, help="only replay halving settings over a kept grid's rows parquet")
    args = parser.parse_args()
    global OBJECTIVE
    OBJECTIVE = args.objective
    # Import the whole sweep engine now: other engineers edit the tree while this runs, and a
    # module imported lazily half an hour later could come from a newer, mismatched version.
    import workbench.sweeps.engine
    import workbench.sweeps.executors
    import workbench.sweeps.plan
    import workbench.sweeps.record
    import workbench.sweeps.runner
    import workbench.sweeps.select
    import workbench.sweeps.work  # noqa: F401

    if args.replay is not None:
        import pandas as pd

        from workbench.sweeps.select import select_winner

        rows = pd.read_parquet(args.replay)
        rows = rows[rows["split"] == "search"]
        pick = select_winner(rows, objective=OBJECTIVE, direction="maximize", constraints=[], metrics=[OBJECTIVE])
        replay_grid(rows, sorted(rows["variant"].unique()), args.halving_limit, pick.best, pick.tied)
        return
    parent = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    print(f"roots under {parent}; {os.cpu_count()} cores; {load()}")
    try:
        first = None
        if args.part in ("loop", "loop+repeat", "all"):
            first = part_loop(parent, args.limit)
        if args.part in ("repeat", "loop+repeat", "all"):
            part_repeat(parent, args.limit, first)
        if args.part in ("halving", "all"):
            part_halving(parent, args.halving_limit, args.axes)
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
