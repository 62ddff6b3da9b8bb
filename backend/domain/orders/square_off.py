"""Intraday auto square-off: when, per segment, the platform closes every open intraday (I) position.

The times are data (``square_off`` in config/trading.yaml), not code. Defaults are the broker's
published times; a trader is warned ``warn_minutes`` before. Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from backend.domain.market.calendar import IST


class SquareOffConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class SquareOffConfig:
    times: Mapping[str, time]  # segment (EQ, FO) -> IST time of the square-off
    warn_minutes: int = 10

    def at(self, segment: str, day: date) -> datetime | None:
        """The square-off moment of ``segment`` on ``day`` (aware, IST); None: no square-off set."""
        t = self.times.get(segment)
        return None if t is None else datetime.combine(day, t, tzinfo=IST)

    def warn_at(self, segment: str, day: date) -> datetime | None:
        at = self.at(segment, day)
        return None if at is None else at - timedelta(minutes=self.warn_minutes)

    def due(self, now: datetime, done: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """(phase, segment) pairs whose moment has come on ``now``'s IST day and are not in ``done``:
        phase ``warn`` (the warning to traders) or ``square_off``. A square-off that is due makes
        its own warning moot."""
        local = now.astimezone(IST)
        out: list[tuple[str, str]] = []
        for segment in sorted(self.times):
            at = self.at(segment, local.date())
            warn = self.warn_at(segment, local.date())
            assert at is not None and warn is not None
            if local >= at:
                if ("square_off", segment) not in done:
                    out.append(("square_off", segment))
            elif local >= warn and ("warn", segment) not in done:
                out.append(("warn", segment))
        return out


def parse_square_off(node: Any) -> SquareOffConfig:
    """``square_off`` of config/trading.yaml: ``{warn_minutes: int, segments: {EQ: "HH:MM", ...}}``."""
    if node is None:
        return SquareOffConfig(times={})
    if not isinstance(node, Mapping):
        raise SquareOffConfigError("square_off", "expected a mapping")
    warn = node.get("warn_minutes", 10)
    if isinstance(warn, bool) or not isinstance(warn, int) or not 0 <= warn <= 120:
        raise SquareOffConfigError("square_off.warn_minutes", "expected whole minutes, 0 to 120")
    segs = node.get("segments") or {}
    if not isinstance(segs, Mapping):
        raise SquareOffConfigError("square_off.segments", "expected a mapping of segment to HH:MM")
    times: dict[str, time] = {}
    for seg, value in segs.items():
        try:
            hh, mm = (int(x) for x in str(value).split(":"))
            times[str(seg)] = time(hh, mm)
        except ValueError:
            raise SquareOffConfigError(f"square_off.segments.{seg}", "expected HH:MM (IST)") from None
    return SquareOffConfig(times=times, warn_minutes=warn)
