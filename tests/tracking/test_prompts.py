from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.errors import TrackingError
from workbench.core.schema import PromptTemplate
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import MlflowTracker, register_prompts
from workbench.tracking.prompts import prompt_content, prompt_name

QA = PromptTemplate(system="Answer briefly.", template="Context: {context}\nQuestion: {question}")
PLAIN = PromptTemplate(template="{context}\n\nQ: {question}\nA:")


def test_prompt_names_are_sanitised() -> None:
    assert prompt_name("quickstart", "qa") == "quickstart.qa"
    assert prompt_name("my config/v2", "qa prompt!") == "my_config_v2.qa_prompt"


def test_content_is_chat_when_there_is_a_system_prompt() -> None:
    assert prompt_content(PLAIN) == PLAIN.template
    assert prompt_content(QA) == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": QA.template},
    ]


def test_in_memory_registry_is_idempotent_and_versioned() -> None:
    tracker = InMemoryTracker()
    run_id = tracker.log_run(
        experiment="e", run_name="r", config_yaml="", params={}, metrics={}, tags={"config_name": "cfg"}
    )
    assert register_prompts(tracker, {"qa": QA}, run_id) == {"qa": "prompts:/cfg.qa/1"}
    assert register_prompts(tracker, {"qa": QA}, run_id) == {"qa": "prompts:/cfg.qa/1"}
    changed = QA.model_copy(update={"template": QA.template + "\nBe exact."})
    assert register_prompts(tracker, {"qa": changed}, run_id) == {"qa": "prompts:/cfg.qa/2"}
    assert tracker.last.tags["prompt.qa"] == "prompts:/cfg.qa/2"


@pytest.mark.integration
def test_mlflow_registry_is_idempotent_versioned_and_pinned(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = tracker.log_run(
        experiment="e", run_name="r", config_yaml="", params={}, metrics={}, tags={"config_name": "quickstart"}
    )
    first = register_prompts(tracker, {"qa": QA, "plain": PLAIN}, run_id)
    assert first == {"qa": "prompts:/quickstart.qa/1", "plain": "prompts:/quickstart.plain/1"}
    assert register_prompts(tracker, {"qa": QA, "plain": PLAIN}, run_id) == first  # same text: no new version

    changed = QA.model_copy(update={"template": QA.template + "\nBe exact.", "version": 2})
    second = register_prompts(tracker, {"qa": changed}, run_id)
    assert second == {"qa": "prompts:/quickstart.qa/2"}

    client = tracker.client
    loaded = client.get_prompt_version("quickstart.qa", 2)
    assert loaded.template[1]["content"].endswith("Be exact.")
    assert loaded.tags["workbench.prompt_version"] == "2"
    assert client.get_prompt_version("quickstart.plain", 1).template == PLAIN.template
    assert [int(v.version) for v in client.search_prompt_versions("quickstart.qa")] == [2, 1]

    tags = client.get_run(run_id).data.tags
    assert tags["prompt.qa"] == "prompts:/quickstart.qa/2"
    assert tags["prompt.plain"] == "prompts:/quickstart.plain/1"
    linked = json.loads(tags["mlflow.linkedPrompts"])
    assert {"name": "quickstart.qa", "version": "1"} in linked
    assert {"name": "quickstart.qa", "version": "2"} in linked

    # Back to the first text: the existing version is reused, not a third one.
    assert register_prompts(tracker.client, {"qa": QA}, None, prefix="quickstart") == {"qa": "prompts:/quickstart.qa/1"}


@pytest.mark.integration
def test_unknown_run_is_a_tracking_error(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    with pytest.raises(TrackingError, match="register prompts"):
        register_prompts(tracker, {"qa": QA}, "0" * 32)
