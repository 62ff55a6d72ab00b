"""`clock`: today's date and time in a time zone, and date arithmetic."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from workbench.core.schema import ClockTool
from workbench.tools.base import Tool, ToolArgs, ToolContext, ToolResult, at_most

_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class ClockArgs(ToolArgs):
    operation: Literal["now", "add_days", "days_between", "weekday"] = Field(
        description="now: the date and time; add_days: date + days; days_between: days from date to "
        "other_date; weekday: the day of the week of date"
    )
    timezone: Annotated[str, at_most(64)] | None = Field(None, description="an IANA time zone, e.g. Europe/Paris")
    date: str | None = Field(None, pattern=_DATE, description="YYYY-MM-DD; default: today")
    other_date: str | None = Field(None, pattern=_DATE, description="YYYY-MM-DD, for days_between")
    days: int = Field(0, ge=-36500, le=36500, description="days to add, for add_days")


class Clock(Tool):
    name = "clock"
    description = "Tells the date and time now in a time zone, and does date arithmetic."
    args_model = ClockArgs
    config: ClockTool

    def __init__(self, config: ClockTool | None = None, context: ToolContext | None = None) -> None:
        super().__init__(config or ClockTool(tool="clock"), context)

    def _zone(self, name: str | None) -> ZoneInfo:
        name = name or self.config.timezone
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.fail(f"unknown time zone {name!r}") from exc

    def _date(self, text: str | None, zone: ZoneInfo, what: str) -> dt.date:
        if text is None:
            return self.context.now().astimezone(zone).date()
        try:
            return dt.date.fromisoformat(text)
        except ValueError as exc:
            raise self.fail(f"{what} {text!r} is not a date") from exc

    def run(self, args: ClockArgs) -> ToolResult:
        zone = self._zone(args.timezone)
        if args.operation == "now":
            now = self.context.now().astimezone(zone).replace(microsecond=0)
            return ToolResult(value=now.isoformat(), text=f"{now:%A %Y-%m-%d %H:%M:%S} {zone.key}")
        date = self._date(args.date, zone, "date")
        if args.operation == "weekday":
            return ToolResult(value=date.strftime("%A"), text=date.strftime("%A"))
        if args.operation == "add_days":
            try:
                later = date + dt.timedelta(days=args.days)
            except OverflowError as exc:
                raise self.fail(f"{date} + {args.days} days is out of range") from exc
            return ToolResult(value=later.isoformat(), text=later.isoformat())
        if args.other_date is None:
            raise self.fail("days_between needs other_date")
        days = (self._date(args.other_date, zone, "other_date") - date).days
        return ToolResult(value=days, text=str(days))
