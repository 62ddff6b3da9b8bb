"""Once-per-trading-day work at session close: DAY-order expiry, then equity snapshots.

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

    return [
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


def _claim(day: date) -> bool:
    client = redis_store.client
    if client is None:
        return True
    return bool(client.set(f"session-close:{day.isoformat()}", b"1", nx=True, ex=3 * 24 * 3600))


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
