"""The bodies of `POST /v1/jobs` and `GET /v1/jobs/{id}`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "done", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "failed"})

MAX_BATCH = 1000
# A dataset is named, never a path: it is looked up in the bundle's root (`<root>/<name>` or
# `<root>/datasets/<name>`), so a caller cannot point a worker at an arbitrary folder.
DATASET_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="POSTed the finished job's view; its host must be loopback or on the server's allow-list",
    )


class BatchJob(_Body):
    """Answer each question, as `/v1/ask` would; a question a guard blocks gets an error of its own."""

    kind: Literal["batch"]
    questions: list[Annotated[str, Field(min_length=1, max_length=20_000)]] = Field(min_length=1, max_length=MAX_BATCH)


class EvalJob(_Body):
    """Run a dataset of the bundle's root through the pipeline and compute its metrics."""

    kind: Literal["eval"]
    dataset: str = Field(pattern=DATASET_NAME)
    limit: int | None = Field(None, gt=0, description="the first N questions only")


JobRequest = Annotated[BatchJob | EvalJob, Field(discriminator="kind")]


class JobAccepted(BaseModel):
    id: str
    status: JobStatus
    url: str = Field(description="where to poll the job")


class JobView(BaseModel):
    """A job as stored. `result` is set once the job is `done`, `error` once it `failed`."""

    id: str
    kind: Literal["batch", "eval"]
    status: JobStatus
    team: str
    key_id: str
    attempts: int = Field(description="deliveries that started the job (above 1 after a worker died)")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
