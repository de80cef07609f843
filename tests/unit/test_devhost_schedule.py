"""Timer schedules: 6-field NCRONTAB (seconds first) or a TimeSpan, with %SETTING%."""

from datetime import UTC, datetime, timedelta

import pytest

from devhost.triggers import Schedule

START = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def occurrences(expression: str, count: int = 3, environ=None) -> list[datetime]:
    schedule = Schedule.parse(expression, environ or {})
    moments, moment = [], START
    for _ in range(count):
        moment = schedule.next_after(moment)
        moments.append(moment)
    return moments


def test_the_first_field_is_seconds():
    assert occurrences("*/15 * * * * *") == [START + timedelta(seconds=s) for s in (15, 30, 45)]


def test_every_five_minutes_at_second_zero():
    assert occurrences("0 */5 * * * *") == [START + timedelta(minutes=m) for m in (5, 10, 15)]


def test_weekdays_at_half_past_nine():
    # 2026-11-21 is a Saturday: the next weekday is Monday the 23rd
    assert occurrences("0 30 9 * * 1-5", 2) == [
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
    ]


def test_names_of_days_and_months_are_understood():
    assert occurrences("0 0 0 1 Jan *", 1) == [datetime(2027, 1, 1, tzinfo=UTC)]
    assert occurrences("0 0 8 * * SUN", 1) == [datetime(2026, 11, 22, 8, tzinfo=UTC)]


def test_a_setting_name_in_percent_signs_is_resolved():
    assert occurrences("%CLEANUP_SCHEDULE%", 1, {"CLEANUP_SCHEDULE": "0 */5 * * * *"}) == [START + timedelta(minutes=5)]


def test_a_timespan_is_a_fixed_interval():
    assert occurrences("00:00:30", 2) == [START + timedelta(seconds=30), START + timedelta(seconds=60)]


def test_a_missing_setting_is_named():
    with pytest.raises(ValueError, match="CLEANUP_SCHEDULE"):
        Schedule.parse("%CLEANUP_SCHEDULE%", {})


@pytest.mark.parametrize("expression", ["*/5 * * * *", "0 0 * * * * *", "0 61 * * * *", "every minute", "00:00:00"])
def test_expressions_that_are_not_six_field_ncrontab_are_refused(expression):
    with pytest.raises(ValueError):
        Schedule.parse(expression, {})
