"""What goes into a bundle's files, as plain JSON-ready data: the index manifest and its content
hash, model references, the environment, the scorecard and the golden questions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from workbench.core.redact import redact_url
from workbench.core.schema import LlamaCppEndpoint, ModelSource, OpenAICompatEndpoint, PipelineConfig

if TYPE_CHECKING:
    import pandas as pd

    from workbench.retrieval.store import IndexData


class GoldenQuestion(BaseModel):
    """A question the bundle must answer as it did when evaluated: the same retrieved chunks
    (`doc_id:start-end`, in order) and, when there was one, the same answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question_id: str
    question: str
    route: str | None = None
    expected_retrieved: list[str]
    expected_answer: str | None = None


# -- the index -------------------------------------------------------------------------------


def index_content_hash(data: IndexData) -> str:
    """sha256 over what a query can retrieve: every chunk's id, document, offsets, text and
    vector (float32, little-endian), in the store's stable order. Not the DuckDB file's bytes,
    which differ between two builds of the same content."""
    digest = hashlib.sha256()
    vectors = data.vectors.astype("<f4", copy=False)
    for row, chunk_id in enumerate(data.chunk_ids):
        head = [chunk_id, data.doc_ids[row], int(data.starts[row]), int(data.ends[row]), data.texts[row]]
        digest.update(json.dumps(head, ensure_ascii=False).encode())
        digest.update(vectors[row].tobytes())
    return digest.hexdigest()


def index_manifest(path: Path, data: IndexData, fingerprint: str, *, slim: bool) -> dict[str, Any]:
    return {
        "file": path.name,
        "fingerprint": fingerprint,
        "corpus_fingerprint": data.corpus_fingerprint,
        "chunks": len(data),
        "dim": int(data.vectors.shape[1]) if data.vectors.ndim == 2 else 0,
        "content_sha256": index_content_hash(data),
        "included": not slim,
    }


# -- models ----------------------------------------------------------------------------------


def _source(source: ModelSource) -> dict[str, Any]:
    from workbench.core.resources import source_version

    if source.package is not None:
        return {"package": source.package, "pattern": source.pattern, "package_version": source_version(source)}
    return {"path": source.path}


def models_manifest(config: PipelineConfig, root: Path) -> dict[str, Any]:
    """Per endpoint, what answers: provider and code; a GGUF's package, version, file and
    sha256; an OpenAI-compatible endpoint's URL (credentials redacted), model id and the *name*
    of its key's environment variable. And the embedder's package and version."""
    from workbench.core.implementation import package_version
    from workbench.core.paths import resolve_model_paths
    from workbench.models.identity import implementation

    resolved = resolve_model_paths(config, root)
    endpoints: dict[str, Any] = {}
    for name, endpoint in config.models.items():
        entry = implementation(resolved.models[name])
        if isinstance(endpoint, LlamaCppEndpoint):
            entry |= _source(endpoint.source)
        elif isinstance(endpoint, OpenAICompatEndpoint):
            entry["api_key_env"] = endpoint.api_key_env
        endpoints[name] = entry
    embedder = {"provider": config.embedder.provider, **_source(config.embedder.source)}
    embedder["sentence_transformers"] = package_version("sentence-transformers")
    out = {"endpoints": endpoints, "embedder": embedder}
    return _redacted(out)


def _redacted(data: Any) -> Any:
    # Every string once more through the URL redactor: nothing credential-like leaves with a bundle.
    if isinstance(data, str):
        return redact_url(data)
    if isinstance(data, dict):
        return {k: _redacted(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_redacted(v) for v in data]
    return data


# -- environment -----------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    """Every installed distribution (what `pip freeze` lists) and its version."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(normalise_name(name), dist.version)
    return dict(sorted(found.items()))


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "distributions": installed_distributions(),
    }


def drift(recorded: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    lines = []
    for name, version in sorted(recorded.items()):
        now = installed.get(normalise_name(name))
        if now is None:
            lines.append(f"{name}: bundle has {version}, not installed")
        elif now != version:
            lines.append(f"{name}: bundle has {version}, installed {now}")
    return lines


# -- scorecard -------------------------------------------------------------------------------

_CI_SUFFIXES = ("_ci_low", "_ci_high", "_n")


def scorecard_metrics(metrics: Mapping[str, float]) -> dict[str, dict[str, float | None]]:
    """`<m>`, `<m>_ci_low`, `<m>_ci_high`, `<m>_n` grouped as {m: {value, ci_low, ci_high, n}};
    a metric logged without an interval has only `value`. NaN becomes null."""

    def num(value: float) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    grouped: dict[str, dict[str, float | None]] = {}
    for name in sorted(metrics):
        if name.endswith(_CI_SUFFIXES) and any(name.removesuffix(s) in metrics for s in _CI_SUFFIXES):
            continue
        entry: dict[str, float | None] = {"value": num(metrics[name])}
        for suffix in _CI_SUFFIXES:
            if f"{name}{suffix}" in metrics:
                entry[suffix[1:]] = num(metrics[f"{name}{suffix}"])
        grouped[name] = entry
    return grouped


# -- golden questions ------------------------------------------------------------------------


def _cell_list(value: Any) -> list[str]:
    """A list column as logged: a list/array, or JSON text (MLflow tables keep nested cells as text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]
    return [str(v) for v in value]


def _flag(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value) if value is not None and value == value else False


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def pick_golden(table: pd.DataFrame, n: int) -> list[GoldenQuestion]:
    """Up to `n` questions of an evaluated run's table, in its order, preferring rows that
    answered cleanly (no error, not blocked, no fallback, answered); rows that errored are never
    chosen. A sweep's table counts its first repeat only."""
    if n <= 0 or table.empty:
        return []
    if "repeat" in table:
        table = table[table["repeat"].astype(int) == 0]
    rows = [r for r in table.to_dict(orient="records") if _text(r.get("error")) is None and "retrieved" in r]
    seen: set[str] = set()
    unique = []
    for row in rows:
        if str(row["question_id"]) not in seen:
            seen.add(str(row["question_id"]))
            unique.append(row)

    def clean(row: Mapping[str, Any]) -> bool:
        answered = bool(_text(row.get("answer"))) and not _flag(row, "abstained")
        return answered and not _flag(row, "blocked") and not _flag(row, "fallback_used")

    ordered = [r for r in unique if clean(r)] + [r for r in unique if not clean(r)]
    return [
        GoldenQuestion(
            question_id=str(row["question_id"]),
            question=str(row["question"]),
            route=_text(row.get("route")),
            expected_retrieved=_cell_list(row.get("retrieved")),
            expected_answer=_text(row.get("answer")),
        )
        for row in ordered[:n]
    ]
