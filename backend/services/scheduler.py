"""Once-per-trading-day work: the intraday square-off per segment, and at session close the last
intraday square-off sweep, DAY-order expiry, then equity snapshots.

One process runs it per day: with Redis, a ``SET NX`` claim on the date; without Redis there is
only one process. Each task is also runnable by hand: ``flask session close``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from backend.domain.market.calendar import IST
from backend.extensions import redis_store

log = logging.getLogger(__name__)


def session_close_tasks() -> list[tuple[str, Callable[[date], Any]]]:
    """The work done once per trading day after the close, in order."""
    from backend.services import analytics
    from backend.services.trading import orders
    from backend.services.trading.orders import square_off

    return [
        # no intraday position survives the session: whatever is still open is closed first
        ("square_off_intraday", lambda day: square_off.square_off(None)),
        ("expire_day_orders", lambda day: orders.expire_day_orders()),  # before snapshots: frees cash
        ("equity_snapshots", analytics.snapshot_all),
    ]


def run_session_close(day: date) -> dict[str, Any]:
    """Run every registered task for ``day``; one failing task does not stop the others."""
    results: dict[str, Any] = {}
    for name, task in session_close_tasks():
        try:
            results[name] = task(day)
        except Exception:  # noqa: BLE001 - logged, and the next task still runs
            log.exception("session-close task failed", extra={"task": name})
            results[name] = "failed"
    log.info("session close done", extra={"day": day.isoformat(), "results": results})
    return results


def _claim(day: date, what: str = "session-close") -> bool:
    client = redis_store.client
    if client is None:
        return True
    return bool(client.set(f"{what}:{day.isoformat()}", b"1", nx=True, ex=3 * 24 * 3600))


def run_square_off_phase(phase: str, segment: str) -> Any:
    """``warn``: tell traders with intraday positions in ``segment``; ``square_off``: close them."""
    from backend.services.trading.orders import square_off

    return square_off.warn(segment) if phase == "warn" else square_off.square_off(segment)


class SquareOffScheduler(threading.Thread):
    """Checks every 15 s; on a trading day, at each segment's warning and square-off time (IST,
    ``square_off`` in config/trading.yaml), runs that phase once (with Redis: one process claims it)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="square-off", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        self.day: date | None = None
        self.done: set[tuple[str, str]] = set()

    def tick(self, now: datetime) -> list[tuple[str, str]]:
        """Run what is due at ``now``; returns the (phase, segment) pairs run."""
        from backend.services import market_data
        from backend.services.trading.orders.square_off import square_off_config

        if self.day != now.date():
            self.day, self.done = now.date(), set()
        ran = []
        with self.app.app_context():
            if not market_data.calendar().is_trading_day(now.date()):
                return ran
            for phase, segment in square_off_config().due(now, self.done):
                self.done.add((phase, segment))
                if _claim(now.date(), f"square-off:{phase}:{segment}"):
                    try:
                        run_square_off_phase(phase, segment)
                    except Exception:  # noqa: BLE001 - the session-close sweep closes what is left
                        log.exception("square-off failed", extra={"phase": phase, "segment": segment})
                ran.append((phase, segment))
        return ran

    def run(self) -> None:
        while not self.stopped.wait(15):
            try:
                self.tick(datetime.now(IST))
            except Exception:  # noqa: BLE001 - retried on the next check
                log.exception("square-off scheduler failed")


class SessionCloseScheduler(threading.Thread):
    """Checks every 30 s; after ``SESSION_TASKS_TIME`` (IST) on a trading day, runs the tasks once."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="session-close", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        hh, mm = (int(x) for x in app.config["SESSION_TASKS_TIME"].split(":"))
        self.at = time(hh, mm)
        self.done: date | None = None

    def run(self) -> None:
        from backend.services import market_data

        while not self.stopped.wait(30):
            now = datetime.now(IST)
            if now.time() < self.at or self.done == now.date():
                continue
            try:
                with self.app.app_context():
                    if market_data.calendar().is_trading_day(now.date()) and _claim(now.date()):
                        run_session_close(now.date())
                self.done = now.date()
            except Exception:  # noqa: BLE001 - retried on the next check
                log.exception("session-close scheduler failed")


def init_app(app: Flask) -> None:
    enabled = app.config.get("SESSION_SCHEDULER")
    if enabled is None:
        enabled = not app.config.get("TESTING")
    if enabled:
        scheduler = SessionCloseScheduler(app)
        scheduler.start()
        app.extensions["session_scheduler"] = scheduler
        square = SquareOffScheduler(app)
        square.start()
        app.extensions["square_off_scheduler"] = square


@click.group("session", cls=AppGroup)
def session_cli() -> None:
    """Trading-session tasks."""


@session_cli.command("close")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Default: today (IST).")
def close_cmd(day: datetime | None) -> None:
    """Run the session-close tasks now (expire DAY orders, take equity snapshots)."""
    target = day.date() if day else datetime.now(IST).date()
    for name, result in run_session_close(target).items():
        click.echo(f"{name}: {result}")


@session_cli.command("square-off")
@click.option("--segment", default=None, help="EQ or FO; default: every segment.")
def square_off_cmd(segment: str | None) -> None:
    """Square off open intraday (I) positions of paper accounts now."""
    from backend.services.trading.orders import square_off

    click.echo(f"square_off: {square_off.square_off(segment)}")
