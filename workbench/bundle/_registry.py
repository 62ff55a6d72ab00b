"""Register an exported bundle in MLflow's model registry, so the UI links run, bundle and version.

The version is made from the run's LoggedModel (the config's model the runner logs once per
config hash) when the run has one, else from the run's artifacts. It is
tagged with the bundle digest and path, the alias points at it, and the run is tagged with the
digest and the version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.bundle._source import SourceRun
from workbench.core.errors import TrackingError

DIGEST_TAG = "workbench.bundle_digest"
PATH_TAG = "workbench.bundle_path"
VERSION_TAG = "workbench.bundle_version"
_MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # what MLflow's own register_model sets on a LoggedModel
_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str | None


def registered_name(config_name: str) -> str:
    return "workbench." + (_BAD.sub("_", config_name).strip("_") or "pipeline")


def register_bundle(client: Any, found: SourceRun, *, digest: str, path: Path, alias: str | None) -> RegisteredVersion:
    """Create a model version for the bundle; TrackingError with one line if MLflow fails."""
    name = registered_name(found.config.name)
    try:
        return _register(client, found, name, digest, path, alias)
    except TrackingError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrackingError(f"MLflow: could not register the bundle as {name}: {type(exc).__name__}: {first}") from exc


def _register(
    client: Any, found: SourceRun, name: str, digest: str, path: Path, alias: str | None
) -> RegisteredVersion:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"bundles of the workbench config {found.config.name}")
    model_id = found.model_id
    # The LoggedModel's own location, not `models:/<id>`: MLflow's SQL registry resolves that URI
    # through the process-wide tracking URI, not this client's, and the workbench never sets it.
    source = client.get_logged_model(model_id).artifact_location if model_id else found.artifact_uri
    tags = {
        DIGEST_TAG: digest,
        PATH_TAG: str(path),
        "workbench.run_id": found.run_id,
        "workbench.config_hash": found.config_hash or "",
    }
    if found.sweep_id:
        tags["workbench.sweep_id"] = found.sweep_id
    version = client.create_model_version(
        name,
        source=source,
        run_id=found.run_id,
        tags=tags,
        description=f"bundle {path} (digest {digest[:12]})",
        model_id=model_id,
    )
    number = str(version.version)
    if alias:
        client.set_registered_model_alias(name, alias, number)
    client.set_tag(found.run_id, DIGEST_TAG, digest)
    client.set_tag(found.run_id, VERSION_TAG, f"{name}/{number}")
    if model_id:
        model = client.get_logged_model(model_id)
        linked = json.loads(model.tags.get(_MODEL_VERSIONS_TAG) or "[]")
        linked.append({"name": name, "version": number})
        client.set_logged_model_tags(model_id, {_MODEL_VERSIONS_TAG: json.dumps(linked)})
    return RegisteredVersion(name, number, alias)
