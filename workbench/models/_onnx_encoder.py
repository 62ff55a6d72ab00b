"""Run a loaded sentence-transformers model's encoder on onnxruntime instead of torch.

The same weights, exported once with `torch.onnx.export` and kept in an on-disk cache keyed by
the embedder's fingerprint and the exporting versions. For small inputs on CPU, torch spends
most of a forward pass on per-operator overhead; onnxruntime runs the same graph in about half
the time (benchmarks/RESULTS.md, "Attack detection"), with vectors equal to torch's to ~1e-6.

Only the pipeline sentence-transformers builds for BERT-style models is supported: Transformer,
then mean or CLS pooling, then an optional Normalize. Anything else is a clear `ConfigError`
rather than silently different vectors.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import ConfigError, MissingDependency
from workbench.core.implementation import package_versions

log = logging.getLogger(__name__)

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_POOLING = ("mean", "cls")


def onnx_cache_dir() -> Path:
    """Where exported graphs are kept: `$WORKBENCH_ONNX_CACHE`, else the user's cache folder."""
    explicit = os.environ.get("WORKBENCH_ONNX_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbench" / "onnx"


def _pipeline_of(model: Any) -> tuple[str, bool]:
    """(pooling mode, normalise) of a sentence-transformers model, or ConfigError."""
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ConfigError(f"embedder backend 'onnx' supports Transformer + Pooling [+ Normalize] models, not {kinds}")
    pooling = model[1].get_config_dict().get("pooling_mode", "mean")
    if pooling not in _POOLING:
        raise ConfigError(f"embedder backend 'onnx' supports {'/'.join(_POOLING)} pooling, not {pooling!r}")
    return pooling, kinds[-1] == "Normalize"


def _hidden_states(transformer: Any) -> Any:
    """`transformer` as a module taking positional tensors, as the exporter wants them."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    return HiddenStates().eval()


def _export(model: Any, target: Path) -> None:
    """Export `model`'s transformer to `target`, atomically (a half-written graph never has the
    final name, so a killed export is redone rather than loaded)."""
    import torch

    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    args = tuple(sample[name] for name in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "hidden")}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing and deprecations
            torch.onnx.export(
                _hidden_states(model[0].auto_model),
                args,
                tmp,
                input_names=list(_INPUTS),
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


class OnnxEncoder:
    """`encode(texts, batch_size, normalize)` like `SentenceTransformer.encode`, on onnxruntime."""

    def __init__(self, model: Any, fingerprint: str, threads: int) -> None:
        try:
            import onnx  # noqa: F401  (the exporter needs it)
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependency(exc.name or "onnxruntime", "embeddings") from exc
        self._pooling, self._normalise = _pipeline_of(model)
        self._tokenizer = model.tokenizer
        self._max_tokens = int(model.max_seq_length)
        versions = package_versions(("torch", "onnxruntime"))
        tag = "-".join(f"{k}{v}" for k, v in sorted(versions.items()))
        path = onnx_cache_dir() / f"{fingerprint}-{tag}.onnx"
        if not path.exists():
            log.info("exporting the embedder to %s", path)
            _export(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path

    def _batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_tokens, return_tensors="np"
        )
        feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in _INPUTS}
        hidden = self._session.run(None, feeds)[0]
        if self._pooling == "cls":
            return np.asarray(hidden[:, 0], dtype=np.float32)
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        return np.asarray((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9), dtype=np.float32)

    def encode(self, texts: list[str], batch_size: int, normalize: bool) -> np.ndarray:
        # Sorted by length, as sentence-transformers does, so batches carry little padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        parts = [
            self._batch([texts[i] for i in order[start : start + batch_size]])
            for start in range(0, len(texts), batch_size)
        ]
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        if normalize or self._normalise:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
