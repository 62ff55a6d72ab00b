"""The few MLflow calls that must honour a client's own tracking URI.

MLflow's fluent tracing, `mlflow.log_feedback` and `link_prompt_version_to_run` all write
to the *process-wide* tracking URI (the global tracer provider, `TracingClient()` and the
global tracking store). The workbench binds each tracker to its own store, so these helpers
talk to that store directly. They are the only place that reaches into MLflow internals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.core.errors import MissingDependency, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"  # what the MLflow UI reads on a run


def tracing_client(client: MlflowClient) -> Any:
    """An MLflow `TracingClient` bound to `client`'s tracking URI (not the global one)."""
    try:
        from mlflow.tracing.client import TracingClient
    except ImportError as exc:
        raise MissingDependency("mlflow", "tracking") from exc
    return TracingClient(client.tracking_uri)


def experiment_for(
    client: MlflowClient,
    experiment: str | None,
    run_id: str | None,
    *,
    create: Callable[[str], str] | None = None,
) -> str:
    """Resolve an experiment name or id (or, with None, the run's) to an id.

    A run's traces must live in the run's experiment; a mismatch is a `TrackingError`.
    An unknown experiment name is created.
    """
    run_experiment = client.get_run(run_id).info.experiment_id if run_id else None
    if experiment is None:
        if run_experiment is None:
            raise TrackingError("give an experiment or a run id to log traces to")
        return str(run_experiment)
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        try:
            found = client.get_experiment(experiment)
        except Exception:  # not an id either; create it by name below
            found = None
    if found is not None and found.lifecycle_stage == "deleted":
        raise TrackingError(f"experiment '{experiment}' is deleted; restore it or use another one")
    if found is not None:
        experiment_id = str(found.experiment_id)
    else:
        experiment_id = str(create(experiment) if create else client.create_experiment(experiment))
    if run_experiment is not None and str(run_experiment) != experiment_id:
        raise TrackingError(f"run {run_id} belongs to experiment {run_experiment}, not '{experiment}'")
    return experiment_id


def link_prompts_to_run(client: MlflowClient, run_id: str, versions: list[tuple[str, str]]) -> None:
    """Add (name, version) pairs to the run's `mlflow.linkedPrompts` tag, as MLflow's own linking does."""
    current = client.get_run(run_id).data.tags.get(LINKED_PROMPTS_TAG)
    try:
        linked = json.loads(current) if current else []
    except json.JSONDecodeError:
        linked = []
    if not isinstance(linked, list):
        linked = []
    for name, version in versions:
        entry = {"name": name, "version": str(version)}
        if entry not in linked:
            linked.append(entry)
    value = json.dumps(linked)
    if value != current:
        client.set_tag(run_id, LINKED_PROMPTS_TAG, value)
