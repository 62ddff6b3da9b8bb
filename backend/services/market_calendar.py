"""The exchange calendar the platform trades by, and the market clock.

The calendar is data: session hours and yearly holiday lists shipped in ``MARKET_CALENDAR_DIR``
(``config/calendars``), plus holiday lists loaded into the database with ``flask calendar load FILE``,
plus ``MARKET_HOLIDAYS``. It is built once per app and rebuilt every ``_REFRESH_SECONDS`` so a list
loaded by the CLI (another process) reaches running workers without a restart.

The clock is injectable (``app.extensions["market_clock"]``, a callable returning an aware UTC
datetime) so session rules are tested at hand-picked times, never the wall clock's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from backend.domain.errors import ValidationFailed
from backend.domain.market.calendar import (
    IST,
    Holiday,
    HolidayFile,
    NseCalendar,
    SessionHours,
    build_calendar,
    parse_holiday_file,
    parse_sessions,
)
from backend.extensions import db

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 300.0
_lock = threading.Lock()
ALWAYS_OPEN = "always_open"


# --------------------------------------------------------------------------- clock


def now(app: Flask | None = None) -> datetime:
    """The market clock: the injected one (tests) or the wall clock, aware UTC."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    clock: Callable[[], datetime] | None = app.extensions.get("market_clock")
    return clock() if clock is not None else datetime.now(UTC)


def always_open(account_mode: str, app: Flask | None = None) -> bool:
    """Whether ``MARKET_CLOCK=always_open`` applies: only a paper account on the simulated market.
    A live account always trades by the exchange's calendar."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return (
        account_mode == "paper"
        and app.config.get("MARKET_CLOCK") == ALWAYS_OPEN
        and app.config.get("MARKET_DATA_PROVIDER", "simulated") == "simulated"
    )


# --------------------------------------------------------------------------- calendar


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"cannot read {path}: {exc}", details={"field": "file"}) from None


def shipped_files(folder: str | Path) -> tuple[dict[str, list[SessionHours]], list[HolidayFile]]:
    """Session hours (``*-sessions.yaml``) and holiday files (``<EXCHANGE>-<YEAR>.yaml``) in ``folder``."""
    root = Path(folder)
    sessions: dict[str, list[SessionHours]] = {}
    files: list[HolidayFile] = []
    if not root.is_dir():
        log.warning("market calendar folder missing; default hours, no holidays", extra={"folder": str(root)})
        return sessions, files
    for path in sorted(root.glob("*.yaml")):
        doc = read_yaml(path)
        if path.stem.endswith("-sessions"):
            sessions.update(parse_sessions(doc))
        else:
            files.append(parse_holiday_file(doc))
    return sessions, files


def _loaded_holidays() -> list[Holiday]:
    from backend.models.market import MarketHoliday

    try:
        rows = db.session.execute(select(MarketHoliday.day, MarketHoliday.name, MarketHoliday.segment)).all()
    except Exception:  # noqa: BLE001 - before the first migration the table is missing: files only
        db.session.rollback()
        log.warning("market_holidays unreadable; shipped calendar only", exc_info=True)
        return []
    return [Holiday(day, name, () if seg == "*" else (seg,)) for day, name, seg in rows]


def _build(app: Flask) -> NseCalendar:
    sessions, files = shipped_files(app.config["MARKET_CALENDAR_DIR"])
    holidays = [h for f in files for h in f.holidays] + _loaded_holidays()
    return build_calendar(sessions, holidays, app.config.get("MARKET_HOLIDAYS", []))


def calendar(app: Flask | None = None) -> NseCalendar:
    """The app's exchange calendar (cached; rebuilt every few minutes and after ``load``)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get("market_calendar")
    if cached is not None and time.monotonic() - cached[0] < _REFRESH_SECONDS:
        return cached[1]
    with _lock:
        cached = app.extensions.get("market_calendar")
        if cached is None or time.monotonic() - cached[0] >= _REFRESH_SECONDS:
            cached = (time.monotonic(), _build(app))
            app.extensions["market_calendar"] = cached
    return cached[1]


def invalidate(app: Flask | None = None) -> None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    app.extensions.pop("market_calendar", None)


def load_file(path: str | Path) -> HolidayFile:
    """Store a holiday file's days (replacing that exchange-year's loaded rows); returns it parsed."""
    from backend.models.market import MarketHoliday

    parsed = parse_holiday_file(read_yaml(Path(path)))
    start, end = date(parsed.year, 1, 1), date(parsed.year, 12, 31)
    db.session.query(MarketHoliday).filter(
        MarketHoliday.exchange == parsed.exchange, MarketHoliday.day >= start, MarketHoliday.day <= end
    ).delete(synchronize_session=False)
    for h in parsed.holidays:
        for seg in h.segments or ("*",):
            db.session.add(
                MarketHoliday(
                    exchange=parsed.exchange,
                    segment=seg,
                    day=h.day,
                    name=h.name[:128],
                    source=parsed.source[:500],
                    status=parsed.status,
                )
            )
    db.session.commit()
    invalidate()
    return parsed


# --------------------------------------------------------------------------- CLI


@click.group("calendar", cls=AppGroup)
def calendar_cli() -> None:
    """Exchange calendar: holiday lists."""


@calendar_cli.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def load_cmd(file: str) -> None:
    """Load a year's holiday list (YAML, as config/calendars/NSE-2026.yaml) into the database."""
    try:
        parsed = load_file(file)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{parsed.exchange} {parsed.year}: {len(parsed.holidays)} holidays loaded ({parsed.status})")


@calendar_cli.command("show")
@click.option("--year", type=int, help="Default: this year (IST).")
@click.option("--segment", default="NSE_EQ", show_default=True)
def show_cmd(year: int | None, segment: str) -> None:
    """List the holidays and session hours in force."""
    cal = calendar()
    year = year or datetime.now(IST).year
    for day in sorted(d for d in cal.holidays_for(segment) if d.year == year):
        click.echo(day.isoformat())
    today = datetime.now(IST).date()
    hours = cal.hours(today, segment)
    click.echo(f"{segment} session today: {hours.open:%H:%M}-{hours.close:%H:%M} IST")
