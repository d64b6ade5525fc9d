"""ISO weeks in Europe/Copenhagen: parsing ``2026-W47`` and the week's boundaries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .contract import TZ
from .errors import UsageError

__all__ = ["TZ", "IsoWeek"]

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week, e.g. ``IsoWeek.parse("2026-W47")``.

    Examples
    --------
    >>> w = IsoWeek.parse("2026-W47")
    >>> (w.monday, w.sunday)
    (datetime.date(2026, 11, 16), datetime.date(2026, 11, 22))
    """

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        m = _WEEK.match(text.strip())
        if not m:
            raise UsageError(f"week {text!r}: expected an ISO week such as 2026-W47")
        year, week = int(m.group(1)), int(m.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise UsageError(f"week {text!r}: {year} has no ISO week {week}") from None
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 7)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    @property
    def start(self) -> datetime:
        """Monday 00:00 local time (inclusive)."""
        return datetime.combine(self.monday, datetime.min.time(), TZ)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 local time (exclusive): Sunday 24:00."""
        return datetime.combine(self.monday + timedelta(days=7), datetime.min.time(), TZ)

    def has_ended(self, now: datetime | None = None) -> bool:
        """Whether the week is over by the Copenhagen clock (``now``: default the current time).

        Examples
        --------
        >>> w = IsoWeek.parse("2026-W47")
        >>> w.has_ended(datetime(2026, 11, 22, 23, 59, tzinfo=TZ)), w.has_ended(datetime(2026, 11, 23, tzinfo=TZ))
        (False, True)
        """
        moment = datetime.now(TZ) if now is None else now
        if moment.tzinfo is None:
            raise ValueError("now must carry a time zone")
        return moment >= self.end

    def require_ended(self, now: datetime | None = None) -> None:
        """Refuse a week that has not ended: its registrations are incomplete, and running it
        would make every earlier week look like a backfill (a typo such as 2030-W01)."""
        if not self.has_ended(now):
            moment = (datetime.now(TZ) if now is None else now).astimezone(TZ)
            raise UsageError(
                f"week {self} has not ended yet: it ends {self.end:%A %d %B %Y %H:%M} Europe/Copenhagen time, "
                f"and it is now {moment:%Y-%m-%d %H:%M}. A week's registrations are complete only after it "
                f"ends; run it then (is {self} a typo?). Nothing was written"
            )

    def lookback_start(self, weeks: int) -> datetime:
        """Start of the ``weeks``-week window that ends with this week (inclusive)."""
        return self.shift(-(weeks - 1)).start
