"""The limits file of `serve --limits FILE`: per-team rates and daily quotas, and the token
estimates a request reserves before its model call. Typed data: YAML + `model_validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.core.errors import ConfigError


class TeamLimits(BaseModel):
    """One team's limits; None: no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(None, ge=1, description="requests per minute, across the team's keys")
    tpm: int | None = Field(None, ge=1, description="tokens per minute, across the team's keys")
    daily_tokens: int | None = Field(None, ge=1, description="tokens per UTC day (429 when used up)")
    daily_dollars: float | None = Field(None, gt=0, description="dollars per UTC day (402 when spent)")


class LimitsConfig(BaseModel):
    """```yaml
    defaults: {rpm: 600}          # teams not listed below
    teams:
      research: {rpm: 120, tpm: 60000, daily_tokens: 2000000, daily_dollars: 5}
    context_tokens: 1024          # reserved for the retrieved context
    output_tokens: 256            # reserved for the answer when the request names no max_tokens
    ```"""

    model_config = ConfigDict(extra="forbid")

    defaults: TeamLimits = Field(default_factory=TeamLimits)
    teams: dict[str, TeamLimits] = Field(default_factory=dict)
    context_tokens: int = Field(1024, ge=0, description="tokens reserved for the retrieved context")
    output_tokens: int = Field(256, ge=0, description="tokens reserved for the answer without max_tokens")

    def team(self, name: str) -> TeamLimits:
        return self.teams.get(name, self.defaults)

    @classmethod
    def from_yaml(cls, path: str | Path) -> LimitsConfig:
        import yaml

        try:
            data: Any = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the limits file: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: {where}: {first['msg']}") from None
