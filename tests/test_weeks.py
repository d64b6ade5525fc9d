"""ISO weeks in Europe/Copenhagen: week 53, year turns, summer time, and whether a week has ended."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from socialsearch.errors import UsageError
from socialsearch.weeks import TZ, IsoWeek


@pytest.mark.parametrize(("text", "monday", "sunday"), [
    ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),     # week 1 starts in the year before
    ("2026-W53", date(2026, 12, 28), date(2027, 1, 3)),     # 2026 has 53 weeks (1 Jan 2026 is a Thursday)
    ("2027-W01", date(2027, 1, 4), date(2027, 1, 10)),
    ("2020-W53", date(2020, 12, 28), date(2021, 1, 3)),
    ("2021-W01", date(2021, 1, 4), date(2021, 1, 10)),      # 1-3 Jan 2021 belong to 2020-W53
    ("2026W47", date(2026, 11, 16), date(2026, 11, 22)),    # without the dash
])
def test_week_boundaries_across_year_turns(text: str, monday: date, sunday: date) -> None:
    w = IsoWeek.parse(text)
    assert (w.monday, w.sunday) == (monday, sunday)
    assert IsoWeek.of(monday) == IsoWeek.of(sunday) == w


@pytest.mark.parametrize("text", ["2025-W53", "2027-W53", "2026-W00", "2026-W54", "2026-47", "W47", "2026-W4"])
def test_weeks_that_do_not_exist_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="week"):
        IsoWeek.parse(text)


def test_days_around_new_year_belong_to_the_right_week() -> None:
    assert str(IsoWeek.of(date(2027, 1, 1))) == "2026-W53"
    assert str(IsoWeek.of(date(2024, 12, 30))) == "2025-W01"
    assert str(IsoWeek.of(date(2021, 1, 3))) == "2020-W53"


def test_shift_crosses_year_turns_and_week_53() -> None:
    w53 = IsoWeek.parse("2026-W53")
    assert str(w53.shift(1)) == "2027-W01"
    assert str(w53.shift(-52)) == "2026-W01"
    assert str(IsoWeek.parse("2027-W01").shift(-1)) == "2026-W53"
    assert str(IsoWeek.parse("2026-W47").shift(-25)) == "2026-W22"


def test_order_is_chronological_across_years() -> None:
    weeks = [IsoWeek.parse(t) for t in ("2027-W01", "2026-W53", "2026-W09", "2025-W52")]
    assert [str(w) for w in sorted(weeks)] == ["2025-W52", "2026-W09", "2026-W53", "2027-W01"]


def test_summer_time_weeks_are_shorter_or_longer_by_an_hour() -> None:
    spring = IsoWeek.parse("2026-W13")  # Sunday 29 March 2026: clocks go 02:00 -> 03:00
    autumn = IsoWeek.parse("2026-W43")  # Sunday 25 October 2026: clocks go 03:00 -> 02:00
    assert spring.start == datetime(2026, 3, 23, tzinfo=TZ) and spring.start.utcoffset() == timedelta(hours=1)
    assert spring.end.utcoffset() == timedelta(hours=2)
    assert spring.end - spring.start == timedelta(days=7)  # wall-clock difference in one zone
    assert spring.end.astimezone(UTC) - spring.start.astimezone(UTC) == timedelta(days=7, hours=-1)
    assert autumn.end.astimezone(UTC) - autumn.start.astimezone(UTC) == timedelta(days=7, hours=1)
    assert spring.end == spring.shift(1).start


def test_a_week_ends_at_sunday_midnight_copenhagen_time() -> None:
    w = IsoWeek.parse("2026-W47")
    assert not w.has_ended(datetime(2026, 11, 22, 23, 59, 59, tzinfo=TZ))
    assert w.has_ended(datetime(2026, 11, 23, 0, 0, tzinfo=TZ))
    # 23:30 UTC on Sunday is already Monday 00:30 in Copenhagen (winter time, UTC+1).
    assert w.has_ended(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    assert not w.has_ended(datetime(2026, 11, 22, 22, 59, tzinfo=UTC))
    # Summer time: the week of 29 June 2026 ends at 22:00 UTC on Sunday 5 July.
    s = IsoWeek.parse("2026-W27")
    assert not s.has_ended(datetime(2026, 7, 5, 21, 59, tzinfo=UTC))
    assert s.has_ended(datetime(2026, 7, 5, 22, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="time zone"):
        w.has_ended(datetime(2026, 11, 23))


def test_require_ended_explains_the_refusal() -> None:
    w = IsoWeek.parse("2030-W01")
    with pytest.raises(UsageError, match=r"week 2030-W01 has not ended yet: it ends Monday 07 January 2030 00:00"):
        w.require_ended(datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    w.require_ended(datetime(2030, 1, 7, 0, 0, tzinfo=TZ))
    IsoWeek.parse("2026-W47").require_ended()  # long over by the real clock
