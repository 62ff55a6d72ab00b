"""The sweep spec: validation with one-line errors, and expansion into pipeline configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.sweeps.conftest import write_spec
from workbench.core.config import load_yaml
from workbench.core.errors import ConfigError
from workbench.core.schema import PipelineConfig
from workbench.sweeps import SweepSpec, load_spec
from workbench.sweeps.expand import expand, set_dotted

REPO = Path(__file__).resolve().parents[2]


def _expand(path: Path) -> list:
    spec, base = load_spec(path)
    return expand(spec, load_yaml(PipelineConfig, base))


def test_grid_expands_every_combination_with_overrides_applied(sweep_spec: Path) -> None:
    variants = _expand(sweep_spec)
    assert len(variants) == 4
    assert len({v.id for v in variants}) == 4
    combos = {(v.config.retrieval.top_k, v.config.retrieval.mode) for v in variants}
    assert combos == {(1, "bm25"), (3, "bm25"), (1, "hybrid"), (3, "hybrid")}
    # Everything not swept is the base config's.
    assert {v.config.generation.model for v in variants} == {"extractive"}
    assert all(v.params.keys() == {"retrieval.top_k", "retrieval.mode"} for v in variants)


def test_variant_ids_are_stable_and_name_the_choice(sweep_spec: Path) -> None:
    first = {v.id: v.params for v in _expand(sweep_spec)}
    again = {v.id: v.params for v in _expand(sweep_spec)}
    assert first == again


def test_named_axis_sets_whole_sections(tmp_path: Path, small_dataset: Path) -> None:
    prompt = {"version": 1, "system": "Be brief.", "template": "{context}\nQ: {question}\nA:"}
    path = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        axes={
            "prompt": {"plain": {}, "brief": {"prompts.brief": prompt, "generation.prompt": "brief"}},
            "generation.model": ["extractive", "strict"],
        },
    )
    variants = _expand(path)
    assert len(variants) == 4
    brief = [v for v in variants if v.params["prompt"] == "brief"]
    assert all(v.config.generation.prompt == "brief" for v in brief)
    assert all(v.config.prompts["brief"].system == "Be brief." for v in brief)


def test_random_search_draws_the_asked_number_of_distinct_variants(tmp_path: Path, small_dataset: Path) -> None:
    path = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        axes={"retrieval.top_k": [1, 2, 3, 4], "retrieval.mode": ["bm25", "dense", "hybrid"]},
        search={"strategy": "random", "samples": 5, "seed": 3},
    )
    variants = _expand(path)
    assert len(variants) == 5 and len({v.id for v in variants}) == 5
    assert [v.id for v in variants] == [v.id for v in _expand(path)]  # seeded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": {}}, "at least one axis"),
        ({"axes": {"retrieval.top_k": []}}, "axis 'retrieval.top_k' has no values"),
        ({"axes": {"retrieval.topk": [1]}}, "unknown key 'retrieval.topk'"),
        ({"axes": {"retrieval.top_k": [0, 2]}}, "axis retrieval.top_k=0"),
        ({"axes": {"prompt": {"x": {"generation.prompt": "nope"}}}}, "unknown prompt 'nope'"),
        ({"constraints": [{"metric": "latency_p95", "max": 2}]}, "constraint on unknown metric 'latency_p95'"),
        ({"objective": {"metric": "f1"}}, "objective on unknown metric 'f1'"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"metrics": ["nonsense"]}, "unknown metric 'nonsense'"),
        ({"metrics": ["token_f1", "faithfulness"]}, "'faithfulness' needs an LLM judge"),
        ({"constraints": [{"metric": "error_rate"}]}, "needs 'min' or 'max'"),
    ],
)
def test_bad_specs_get_one_line_naming_the_problem(
    tmp_path: Path, small_dataset: Path, change: dict, message: str
) -> None:
    path = write_spec(tmp_path, small_dataset / "corpus.jsonl", **change)
    with pytest.raises(ConfigError) as err:
        _expand(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_base_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": "nowhere.yaml", "axes": {"retrieval.top_k": [1]}}))
    with pytest.raises(ConfigError, match="base config 'nowhere.yaml' not found"):
        load_spec(path)


def test_set_dotted_refuses_to_descend_into_a_value() -> None:
    data = {"retrieval": {"top_k": 3}}
    with pytest.raises(ConfigError, match="is not a section"):
        set_dotted(data, "retrieval.top_k.x", 1)


def test_shipped_sweep_round_trips_and_expands() -> None:
    path = REPO / "experiments" / "sweeps" / "quickstart.yaml"
    spec, base = load_spec(path)
    again = SweepSpec.model_validate(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec
    variants = expand(spec, load_yaml(PipelineConfig, base))
    assert len(variants) == 12
    axes = set(spec.axes)
    assert {"retrieval.mode", "retrieval.top_k", "prompt", "generation.model", "routing.threshold"} <= axes
    assert {v.config.generation.model for v in variants} == {"smollm2", "extractive"}


def test_published_sweep_schema_is_current() -> None:
    import json

    published = json.loads((REPO / "experiments" / "sweeps" / "sweep.schema.json").read_text())
    assert published == json.loads(json.dumps(SweepSpec.model_json_schema())), (
        "regenerate with: python -m workbench schema --sweep > experiments/sweeps/sweep.schema.json"
    )
