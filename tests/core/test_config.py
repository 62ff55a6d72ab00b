from pathlib import Path

import pytest
import yaml

from workbench.core.config import dump_yaml, flatten, load_yaml
from workbench.core.errors import ConfigError
from workbench.core.schema import PipelineConfig

EXPERIMENTS = sorted(Path("experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_experiment_round_trips(path: Path) -> None:
    config = load_yaml(PipelineConfig, path)
    again = PipelineConfig.model_validate(yaml.safe_load(dump_yaml(config)))
    assert again == config
    assert dump_yaml(again) == dump_yaml(config)


def test_experiments_exist() -> None:
    assert any(p.name == "quickstart.yaml" for p in EXPERIMENTS)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load(Path("experiments/quickstart.yaml").read_text())


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    data = _base()
    data["retrieval"]["topk"] = 3
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_yaml(PipelineConfig, path)
    assert str(path) in str(err.value) and "unknown key 'retrieval.topk'" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_key_is_named(tmp_path: Path) -> None:
    data = _base()
    del data["embedder"]
    with pytest.raises(ConfigError, match="missing key 'embedder'"):
        load_yaml(PipelineConfig, _write(tmp_path, data))


def test_invalid_value_is_named(tmp_path: Path) -> None:
    data = _base()
    data["retrieval"]["mode"] = "magic"
    with pytest.raises(ConfigError, match="invalid value .*'retrieval.mode'"):
        load_yaml(PipelineConfig, _write(tmp_path, data))


def test_unknown_model_reference(tmp_path: Path) -> None:
    data = _base()
    data["generation"]["model"] = "gpt-nothing"
    with pytest.raises(ConfigError, match="unknown model 'gpt-nothing' in generation.model"):
        load_yaml(PipelineConfig, _write(tmp_path, data))


def test_unknown_guard_check(tmp_path: Path) -> None:
    data = _base()
    data["guardrails"]["input"].append({"check": "telepathy"})
    with pytest.raises(ConfigError, match="guardrails.input"):
        load_yaml(PipelineConfig, _write(tmp_path, data))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(PipelineConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(PipelineConfig, bad)


def test_secret_is_an_env_var_name_never_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _base()
    data["models"]["remote"] = {
        "provider": "openai_compat",
        "base_url": "http://127.0.0.1:1/v1",
        "model": "any",
        "api_key_env": "WORKBENCH_TEST_KEY",
    }
    monkeypatch.setenv("WORKBENCH_TEST_KEY", "sk-secret-value")
    config = load_yaml(PipelineConfig, _write(tmp_path, data))
    dumped = dump_yaml(config)
    assert "WORKBENCH_TEST_KEY" in dumped and "sk-secret-value" not in dumped
    with pytest.raises(ConfigError, match="unknown key 'models.remote.openai_compat.api_key'"):
        data["models"]["remote"]["api_key"] = "sk-secret-value"
        load_yaml(PipelineConfig, _write(tmp_path, data))


def test_route_overrides_merge() -> None:
    config = load_yaml(PipelineConfig, "experiments/quickstart.yaml")
    assert config.route_prompt("structured") == "facts_json"
    assert config.route_prompt("general") == config.generation.prompt
    assert config.route_retrieval("general") == config.retrieval


def test_flatten() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2]}, "d": [{"e": 1}]})
    assert flat == {"a.b": 1, "a.c": [1, 2], "d.0.e": 1}


def test_published_json_schema_is_current() -> None:
    import json

    published = json.loads(Path("experiments/pipeline.schema.json").read_text())
    assert published == json.loads(json.dumps(PipelineConfig.model_json_schema())), (
        "regenerate with: python -m workbench schema > experiments/pipeline.schema.json"
    )


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"temperature": 0.1, "api_key": "sk-1"}, "api_key"),
        ({"Authorization": "Bearer sk-1"}, "Authorization"),
        ({"extra_headers": {"X-Api-Key": "sk-1"}}, "extra_headers.X-Api-Key"),
        ({"extra_body": {"options": [{"accessToken": "t"}]}}, "extra_body.options.0.accessToken"),
        ({"PASSWORD": "p"}, "PASSWORD"),
    ],
)
def test_secret_looking_params_are_refused(tmp_path: Path, params: dict, key: str) -> None:
    data = _base()
    data["models"]["remote"] = {
        "provider": "openai_compat",
        "base_url": "http://127.0.0.1:1/v1",
        "model": "any",
        "params": params,
    }
    with pytest.raises(ConfigError) as err:
        load_yaml(PipelineConfig, _write(tmp_path, data))
    message = str(err.value)
    assert f"params.{key} looks like a secret" in message and "api_key_env" in message
    assert "models.remote" in message and "\n" not in message


def test_ordinary_params_are_kept(tmp_path: Path) -> None:
    data = _base()
    name = next(iter(data["models"]))
    data["models"][name]["params"] = {"max_tokens": 64, "stop_token_ids": [2], "temperature": 0.0}
    config = load_yaml(PipelineConfig, _write(tmp_path, data))
    assert config.models[name].params["stop_token_ids"] == [2]


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", "a\\b", ".hidden", "", "x" * 101, "a b"])
def test_config_name_cannot_escape_results(tmp_path: Path, name: str) -> None:
    data = _base()
    data["name"] = name
    with pytest.raises(ConfigError) as err:
        load_yaml(PipelineConfig, _write(tmp_path, data))
    assert "'name'" in str(err.value) and "results/<name>/" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["quickstart", "rag-v2.1", "A_b-9"])
def test_plain_config_names_are_accepted(tmp_path: Path, name: str) -> None:
    data = _base()
    data["name"] = name
    assert load_yaml(PipelineConfig, _write(tmp_path, data)).name == name
