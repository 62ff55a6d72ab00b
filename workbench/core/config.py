"""Config base and YAML loading: `yaml.safe_load` + `model_validate`, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from workbench.core.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class ConfigModel(BaseModel):
    """Base for every config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the first bad key and what is wrong with it."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if not loc:
        return f"{source}: {err['msg'].removeprefix('Value error, ')}{more}"
    if err["type"] == "extra_forbidden":
        what = "unknown key"
    elif err["type"] == "missing":
        what = "missing key"
    else:
        what = f"invalid value ({err['msg']})"
    return f"{source}: {what} '{loc}'{more}"


def validate_config(model: type[T], data: Any, source: str = "<config>") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def load_yaml(model: type[T], path: str | Path) -> T:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_config(model, data, str(path))


def dump_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=False), sort_keys=False)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts/lists into dotted keys, for MLflow parameters."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = data
    return out
