"""`ReplyStage`: answer with a fixed text and call no model (an out-of-scope refusal)."""

from __future__ import annotations

from workbench.core.config import ConfigModel
from workbench.core.stage import Stage
from workbench.core.state import RequestState
from workbench.core.text import is_abstention


class ReplyConfig(ConfigModel):
    text: str


class ReplyStage(Stage):
    """Writes the route's fixed `reply` as the answer; it abstains if the text declines to answer
    (by the one definition in `core.text`). Nothing to cache: it is cheaper than a lookup."""

    kind = "reply"
    reads = ()
    writes = ("answer", "abstained")
    cacheable = False
    config: ReplyConfig

    def run(self, state: RequestState) -> RequestState:
        return state.model_copy(update={"answer": self.config.text, "abstained": is_abstention(self.config.text)})
