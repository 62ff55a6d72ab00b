import datetime as dt

import pytest

from workbench.core.errors import ToolError
from workbench.core.schema import ClockTool
from workbench.tools import ToolContext
from workbench.tools.clock import Clock

# 23:30 UTC on a Saturday is already Sunday in Tokyo and still Saturday in New York.
NOW = dt.datetime(2026, 12, 5, 23, 30, 15, 999, tzinfo=dt.UTC)


def _clock(timezone: str = "UTC") -> Clock:
    return Clock(ClockTool(tool="clock", timezone=timezone), ToolContext(now=lambda: NOW))


def _run(clock: Clock, arguments: str) -> str:
    return clock.run(clock.parse(arguments)).text


def test_now_in_the_configured_zone_and_in_the_one_asked_for() -> None:
    assert _run(_clock(), '{"operation": "now"}') == "Saturday 2026-12-05 23:30:15 UTC"
    assert _run(_clock("Asia/Tokyo"), '{"operation": "now"}') == "Sunday 2026-12-06 08:30:15 Asia/Tokyo"
    ny = _run(_clock("Asia/Tokyo"), '{"operation": "now", "timezone": "America/New_York"}')
    assert ny == "Saturday 2026-12-05 18:30:15 America/New_York"


def test_today_depends_on_the_zone() -> None:
    assert _run(_clock(), '{"operation": "weekday"}') == "Saturday"
    assert _run(_clock("Asia/Tokyo"), '{"operation": "weekday"}') == "Sunday"


def test_date_arithmetic() -> None:
    clock = _clock()
    assert _run(clock, '{"operation": "add_days", "date": "2024-02-28", "days": 2}') == "2024-03-01"
    assert _run(clock, '{"operation": "add_days", "days": -5}') == "2026-11-30"
    assert _run(clock, '{"operation": "days_between", "date": "2026-01-01", "other_date": "2026-12-25"}') == "358"
    assert _run(clock, '{"operation": "weekday", "date": "1969-07-20"}') == "Sunday"


def test_the_real_clock_is_the_default() -> None:
    text = _run(Clock(), '{"operation": "now"}')
    assert text.endswith(" UTC") and dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") in text


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ('{"operation": "now", "timezone": "Mars/Olympus"}', "unknown time zone 'Mars/Olympus'"),
        ('{"operation": "now", "timezone": "../../etc/passwd"}', "unknown time zone"),
        ('{"operation": "weekday", "date": "2026-02-30"}', "date '2026-02-30' is not a date"),
        ('{"operation": "days_between", "date": "2026-01-01"}', "days_between needs other_date"),
        ('{"operation": "add_days", "date": "9999-12-31", "days": 1}', "out of range"),
    ],
)
def test_failures_are_tool_errors(arguments: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        _run(_clock(), arguments)


@pytest.mark.parametrize(
    "arguments",
    ['{"operation": "yesterday"}', '{"operation": "weekday", "date": "05/12/2026"}', '{"operation": "now", "x": 1}'],
)
def test_arguments_are_validated(arguments: str) -> None:
    with pytest.raises(ToolError, match="clock: invalid arguments"):
        _clock().parse(arguments)
