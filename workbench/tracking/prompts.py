"""Register a config's prompt templates in MLflow's prompt registry and pin them on a run.

Each template becomes the prompt `<prefix>.<prompt name>` (characters MLflow rejects become
`_`). Registering is idempotent: when a version with the same content exists it is reused,
a changed template gets a new version. A template with a system message is registered as a
chat prompt (system + user messages), one without as a text prompt. The workbench's own
`version` number is kept as a version tag, not compared.

The run gets a `prompt.<name>` tag holding the `prompts:/name/version` URI, and MLflow's
`mlflow.linkedPrompts` tag, which the MLflow UI shows on the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from workbench.core.errors import TrackingError
from workbench.core.schema import PromptTemplate

if TYPE_CHECKING:
    from mlflow import MlflowClient

PROMPT_TAG_PREFIX = "prompt."
VERSION_TAG = "workbench.prompt_version"
DEFAULT_PREFIX = "workbench"
_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


class PromptSink(Protocol):
    """Anything with `register_prompts` (an `MlflowTracker`, an `InMemoryTracker`)."""

    def register_prompts(
        self, prompts: Mapping[str, PromptTemplate], *, run_id: str | None, prefix: str | None
    ) -> dict[str, str]: ...


def prompt_name(prefix: str, name: str) -> str:
    """`<prefix>.<name>` with every run of characters MLflow rejects turned into `_`."""
    clean = ".".join(_BAD.sub("_", part).strip("_") or "_" for part in (prefix, name))
    return clean[:200]


def prompt_content(template: PromptTemplate) -> str | list[dict[str, str]]:
    """What is registered: chat messages when there is a system prompt, else the template text."""
    if template.system:
        return [{"role": "system", "content": template.system}, {"role": "user", "content": template.template}]
    return template.template


def prompt_uri(name: str, version: int | str) -> str:
    return f"prompts:/{name}/{version}"


def run_prompt_tags(uris: Mapping[str, str]) -> dict[str, str]:
    """The run tags that pin each prompt's registered URI."""
    return {f"{PROMPT_TAG_PREFIX}{name}": uri for name, uri in uris.items()}


def register_prompts(
    tracker: PromptSink | MlflowClient,
    prompts: Mapping[str, PromptTemplate],
    run_id: str | None,
    *,
    prefix: str | None = None,
) -> dict[str, str]:
    """Register `prompts`; returns {prompt name: "prompts:/<registered name>/<version>"}.

    `prefix` defaults to the run's `config_name` tag (set by the dataset runner), else
    "workbench". With a `run_id`, the versions are pinned on that run.
    """
    method = getattr(tracker, "register_prompts", None)
    if callable(method):
        result: dict[str, str] = method(prompts, run_id=run_id, prefix=prefix)
        return result
    try:
        return write_prompts(tracker, prompts, run_id, prefix=prefix)  # type: ignore[arg-type]
    except TrackingError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrackingError(f"MLflow: could not register prompts: {type(exc).__name__}: {first}") from exc


def write_prompts(
    client: MlflowClient, prompts: Mapping[str, PromptTemplate], run_id: str | None, *, prefix: str | None = None
) -> dict[str, str]:
    """Register through `client` (its own registry URI). MLflow errors propagate; callers wrap them."""
    from workbench.tracking._limits import tag_items
    from workbench.tracking._mlflow import link_prompts_to_run

    if prefix is None:
        prefix = DEFAULT_PREFIX
        if run_id:
            prefix = client.get_run(run_id).data.tags.get("config_name") or DEFAULT_PREFIX
    uris: dict[str, str] = {}
    pinned: list[tuple[str, str]] = []
    for key, template in prompts.items():
        name = prompt_name(prefix, key)
        version = _existing_version(client, name, prompt_content(template))
        if version is None:
            registered = client.register_prompt(
                name=name,
                template=prompt_content(template),
                commit_message=f"workbench prompt '{key}' v{template.version}",
                tags={VERSION_TAG: str(template.version)},
            )
            version = str(registered.version)
        uris[key] = prompt_uri(name, version)
        pinned.append((name, version))
    if run_id and uris:
        from mlflow.entities import RunTag

        tags = [RunTag(k, v) for k, v in tag_items(run_prompt_tags(uris)).items()]
        client.log_batch(run_id, tags=tags)
        link_prompts_to_run(client, run_id, pinned)
    return uris


def _existing_version(client: MlflowClient, name: str, content: Any) -> str | None:
    """The newest registered version of `name` whose content equals `content`, or None."""
    if client.get_prompt(name) is None:
        return None
    best: int | None = None
    token = None
    while True:
        page = client.search_prompt_versions(name, max_results=100, page_token=token)
        for version in page:
            if version.template == content and (best is None or int(version.version) > best):
                best = int(version.version)
        token = getattr(page, "token", None)
        if not token:
            break
    return None if best is None else str(best)
