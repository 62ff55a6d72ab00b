"""`python -m workbench guard CONFIG --input PROMPTS.jsonl --out VERDICTS.jsonl`: screen a file of
prompts with a config's input checks.

It sits on top of the layers (like `pipeline.py`): it builds the config's embedder for checks
that read one (`attack`) and hands it to the guardrails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workbench.core.dataset import json_objects
from workbench.core.errors import DatasetError


def add_parser(sub: Any) -> None:
    guard = sub.add_parser("guard", help="screen a file of prompts (id, text) with a config's input checks")
    guard.add_argument("config")
    guard.add_argument("--input", required=True, help="JSONL, one prompt a line: {'id': ..., 'text': ...}")
    guard.add_argument("--out", required=True, help="JSONL, one verdict a line: id, blocked, each check's result")
    guard.set_defaults(func=cmd_guard)


def read_prompts(path: Path) -> list[tuple[Any, str]]:
    """(id, text) per line; a bad line is a `DatasetError` naming file:line."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from exc
    prompts: list[tuple[Any, str]] = []
    for where, row in json_objects(lines, path, "a JSON object with 'id' and 'text'"):
        for key in ("id", "text"):
            if key not in row:
                raise DatasetError(f"{where}: missing {key!r}")
        if not isinstance(row["text"], str):
            raise DatasetError(f"{where}: 'text' must be a string")
        if not isinstance(row["id"], str | int):
            raise DatasetError(f"{where}: 'id' must be a string or an integer")
        prompts.append((row["id"], row["text"]))
    if not prompts:
        raise DatasetError(f"{path}: no prompts")
    return prompts


def _names(checks: list[Any]) -> list[str]:
    """Each check's key in a verdict: its name, numbered when a config repeats a check."""
    seen: dict[str, int] = {}
    names = []
    for check in checks:
        name = check.config.check
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names


def screen(config_path: str | Path, prompts: list[tuple[Any, str]]) -> list[dict[str, Any]]:
    """One verdict per prompt. Every check sees the prompt as written (no earlier mask applies),
    so each score is reported; `blocked` is whether any check whose action is block triggered."""
    from workbench.core.config import load_yaml
    from workbench.core.paths import resolve_model_paths
    from workbench.core.schema import PipelineConfig
    from workbench.core.state import RequestState
    from workbench.guardrails import CheckContext, build_check
    from workbench.models.embedder import SentenceTransformerEmbedder

    config = load_yaml(PipelineConfig, config_path)
    # Cheap until a check embeds something: the weights load on first use.
    embedder = SentenceTransformerEmbedder(resolve_model_paths(config, Path(".")).embedder)
    context = CheckContext(side="input", routes=dict(config.routing.routes), embedder=embedder)
    checks = [build_check(c, context) for c in config.guardrails.input]
    names = _names(checks)
    verdicts = []
    for prompt_id, text in prompts:
        state = RequestState(query=text)
        results: dict[str, Any] = {}
        blocked = False
        for name, check in zip(names, checks, strict=True):
            result = check.inspect(text, state)
            blocked |= result.triggered and check.action == "block"
            results[name] = {
                "triggered": result.triggered,
                "score": result.score,
                "action": check.action,
                "detail": result.detail,
            }
        verdicts.append({"id": prompt_id, "blocked": blocked, "checks": results})
    return verdicts


def cmd_guard(args: argparse.Namespace) -> int:
    prompts = read_prompts(Path(args.input))
    verdicts = screen(args.config, prompts)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    except OSError as exc:
        raise DatasetError(f"{out}: cannot write it ({exc.strerror})") from exc
    blocked = sum(v["blocked"] for v in verdicts)
    print(f"{len(verdicts)} prompts, {blocked} blocked -> {out}")
    return 0
