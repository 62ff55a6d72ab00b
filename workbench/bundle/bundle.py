"""`Bundle`: an exported, verified pipeline folder, opened for serving or checking.

    DIR/
      config.yaml        the evaluated PipelineConfig (prompts inside); prompts.json: registry URIs
      index/index.json   the index manifest (file, fingerprint, chunk count, content hash)
      index/<f>.duckdb   the index file itself (absent from a slim bundle)
      models.json        what answers per endpoint (GGUF sha256, model ids; env-var names only)
      scorecard.json     metrics with CIs, dataset fingerprint, MLflow run (and sweep) id
      golden.jsonl       questions with their expected retrieval ids and answers
      environment.json   Python, platform and installed distribution versions
      manifest.json      sha256 and size of every file above, and the bundle digest
      var/               runtime state (request log): not in the manifest

>>> bundle = Bundle.open("bundle/")        # BundleError when tampered or incomplete
>>> wb = bundle.session(); wb.ask("...")    # the evaluated pipeline over the bundle's index
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from workbench.bundle._contents import GoldenQuestion, drift, index_content_hash, installed_distributions
from workbench.bundle.manifest import VAR_DIR, read_manifest, verify_bundle
from workbench.core.config import validate_config
from workbench.core.errors import BundleError, ConfigError
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.schema import LlamaCppEndpoint, PipelineConfig

if TYPE_CHECKING:
    from workbench.core.stage import Pipeline
    from workbench.session import Workbench
    from workbench.tracking import Tracker

CONFIG_FILE = "config.yaml"
PROMPTS_FILE = "prompts.json"
INDEX_DIR = "index"
INDEX_MANIFEST = "index/index.json"
MODELS_FILE = "models.json"
SCORECARD_FILE = "scorecard.json"
GOLDEN_FILE = "golden.jsonl"
ENVIRONMENT_FILE = "environment.json"


def _json(folder: Path, name: str) -> Any:
    try:
        return json.loads((folder / name).read_text())
    except FileNotFoundError:
        raise BundleError(f"{folder}: {name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder}: {name} is unreadable ({exc})") from exc


def _golden(folder: Path) -> list[GoldenQuestion]:
    path = folder / GOLDEN_FILE
    if not path.is_file():
        raise BundleError(f"{folder}: {GOLDEN_FILE} is missing")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(GoldenQuestion.model_validate_json(line))
        except ValidationError as exc:
            raise BundleError(f"{path}:{lineno}: not a golden question ({exc.errors()[0]['msg']})") from exc
    return out


def _config(folder: Path) -> PipelineConfig:
    path = folder / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{folder}: {CONFIG_FILE} is missing") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from exc
    try:
        return validate_config(PipelineConfig, data, str(path))
    except ConfigError as exc:
        raise BundleError(str(exc)) from exc


class Bundle:
    """An opened bundle. `open` checks the manifest (unless `verify=False`), parses every file
    and finds the index; nothing is loaded into memory until `session()`."""

    def __init__(self, path: Path, manifest: dict[str, Any], *, root: Path, index: Path) -> None:
        self.path = path
        self.manifest = manifest
        self.digest: str = manifest["digest"]
        self.root = root
        self.index_path = index
        self.config = _config(path)
        self.golden = _golden(path)
        self.scorecard: dict[str, Any] = _json(path, SCORECARD_FILE)
        self.models: dict[str, Any] = _json(path, MODELS_FILE)
        self.environment: dict[str, Any] = _json(path, ENVIRONMENT_FILE)
        self.prompts: dict[str, Any] = _json(path, PROMPTS_FILE)
        self.index_manifest: dict[str, Any] = _json(path, INDEX_MANIFEST)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        verify: bool = True,
        index: str | Path | None = None,
        root: str | Path = ".",
    ) -> Bundle:
        """Open the bundle at `path`. BundleError when it is tampered with or incomplete.

        A slim bundle's index is found in the config's `store.indexes` folder (relative to
        `root`), or at `index`; its content hash must equal the one exported. `index` also
        replaces a full bundle's own index file, under the same check.
        """
        folder = Path(path)
        if verify:
            verify_bundle(folder)
        manifest = read_manifest(folder)
        described = _json(folder, INDEX_MANIFEST)
        if not isinstance(described, dict) or not {"file", "content_sha256", "included"} <= set(described):
            raise BundleError(f"{folder}: {INDEX_MANIFEST} is malformed")
        chosen = _index_file(folder, described, index, Path(root))
        return cls(folder, manifest, root=Path(root), index=chosen)

    # -- checks against this machine -----------------------------------------------------------

    def environment_drift(self) -> list[str]:
        """One line per distribution whose installed version differs from the bundle's, or that
        is not installed; [] when the environment is the exported one."""
        return drift(self.environment.get("distributions", {}), installed_distributions())

    def check_models(self) -> None:
        """BundleError when a local GGUF the bundle names is missing or its sha256 differs."""
        from workbench.core.paths import resolve_model_paths
        from workbench.core.resources import resolve_source
        from workbench.models.identity import file_sha256

        resolved = resolve_model_paths(self.config, self.root)
        for name, entry in self.models.get("endpoints", {}).items():
            endpoint = resolved.models.get(name)
            expected = entry.get("sha256")
            if not isinstance(endpoint, LlamaCppEndpoint) or not expected:
                continue
            try:
                found = resolve_source(endpoint.source)
            except ConfigError as exc:
                raise BundleError(f"model {name}: {exc}") from exc
            if file_sha256(found) != expected:
                raise BundleError(
                    f"model {name}: {found.name} has sha256 {file_sha256(found)[:12]}…, "
                    f"the bundle was evaluated with {expected[:12]}…"
                )

    # -- serving -----------------------------------------------------------------------------

    def session(
        self,
        *,
        embedder: Embedder | None = None,
        models: Mapping[str, ChatModel] | None = None,
        tracker: Tracker | None = None,
        root: str | Path | None = None,
    ) -> Workbench:
        """A `Workbench` over the bundle's config and index, with no stage cache: its `pipeline`
        is `build_pipeline(config, ...)` over the bundle's index, and `ask` answers from it."""
        from workbench.session import Workbench

        return Workbench(
            self.config,
            config_path=self.path / CONFIG_FILE,
            embedder=embedder,
            models=dict(models or {}),
            tracker=tracker,
            cache=None,
            root=self.root if root is None else root,
            index=self.index_path.resolve(),
        )

    async def arun_golden(self, pipeline: Pipeline) -> list[str]:
        """Ask every golden question; [] when each gets its expected retrieval ids (in order),
        route and answer, else one line per mismatch."""
        from workbench.core.state import RequestState

        problems = []
        for q in self.golden:
            try:
                state = await pipeline.arun(RequestState(query=q.question))
            except Exception as exc:  # a failed golden question is a mismatch to report, not a crash
                problems.append(f"{q.question_id}: failed ({type(exc).__name__}: {exc})")
                continue
            retrieved = [f"{c.doc_id}:{c.start}-{c.end}" for c in state.chunks]
            if retrieved != q.expected_retrieved:
                problems.append(f"{q.question_id}: retrieved {retrieved} instead of {q.expected_retrieved}")
            elif q.route is not None and state.route != q.route:
                problems.append(f"{q.question_id}: routed to {state.route!r} instead of {q.route!r}")
            elif q.expected_answer is not None and state.answer != q.expected_answer:
                problems.append(
                    f"{q.question_id}: answered {_short(state.answer)} instead of {_short(q.expected_answer)}"
                )
        return problems

    @property
    def request_log_dir(self) -> Path:
        """`DIR/var`, runtime state outside the manifest (created on first use)."""
        folder = self.path / VAR_DIR
        folder.mkdir(exist_ok=True)
        return folder

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, digest={self.digest[:12]!r}, config={self.config.name!r})"


def _short(text: str | None, limit: int = 80) -> str:
    if text is None:
        return "nothing"
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _index_file(folder: Path, described: dict[str, Any], override: str | Path | None, root: Path) -> Path:
    """The index file to answer from, its content checked unless it is the bundle's own."""
    from workbench.retrieval.store import Store

    name = str(described["file"])
    if override is None and described["included"]:
        return folder / INDEX_DIR / name
    if override is not None:
        path = Path(override)
    else:
        config = _config(folder)
        path = root / config.store.indexes / name
    if not path.is_file():
        raise BundleError(
            f"{folder}: slim bundle, and its index {name} is not at {path}; build it (run the config "
            "over its dataset) or pass the index file with --index"
        )
    try:
        data = Store(path).load()
    except Exception as exc:
        raise BundleError(f"{path}: not a readable index ({exc})") from exc
    if index_content_hash(data) != described["content_sha256"]:
        raise BundleError(f"{path}: index content differs from the bundle's (content hash mismatch)")
    return path
