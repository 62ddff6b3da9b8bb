"""Market-session jobs, timed by the exchange calendar (data, per segment):

- at each segment's open: queued paper AMOs of that segment go live (``release_amo``);
- at each segment's close: its working DAY orders expire (``expire_day_orders``), so NSE_EQ orders
  expire at 15:30 and NSE_FO orders at the F&O close (15:40 from 3 Aug 2026);
- at each segment's square-off warning and square-off times (``square_off`` in config/trading.yaml):
  open intraday positions are warned about, then closed (``SquareOffScheduler``);
- at the F&O close: paper positions in contracts expiring that day are settled at the final
  settlement price, the index close (``settle_expiry``: ITM options exercised or assigned at intrinsic
  value, OTM ones expire worthless, futures settle);
- once per trading day after every segment has closed and ``SESSION_TASKS_TIME``: the session-close
  tasks (DAY-order expiry for anything left, expiry settlement again (idempotent), then equity
  snapshots).

One process runs each job per day: with Redis, a ``SET NX`` claim on (job, segment, date); without
Redis there is only one process. ``flask session close`` runs the session-close tasks by hand.
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

from backend.domain.market.calendar import IST, NseCalendar
from backend.extensions import redis_store

log = logging.getLogger(__name__)

SEGMENTS = ("NSE_EQ", "NSE_FO")  # the traded segments (an index follows NSE_EQ and is not traded)


def session_close_tasks() -> list[tuple[str, Callable[[date], Any]]]:
    """The work done once per trading day after the last close, in order."""
    from backend.services import analytics
    from backend.services.trading import orders
    from backend.services.trading.orders import square_off
    from backend.services.trading.orders.settlement import settle_expiry

    return [
        # no intraday position survives the session: whatever is still open is closed first
        ("square_off_intraday", lambda day: square_off.square_off(None)),
        ("expire_day_orders", lambda day: orders.expire_day_orders()),  # before snapshots: frees cash
        # settles nothing twice: catches an expiry whose F&O-close job failed or did not run
        ("settle_expiry", settle_expiry),
        ("equity_snapshots", analytics.snapshot_all),
    ]


def segment_jobs() -> list[tuple[str, str, str, Callable[[datetime], Any]]]:
    """(job, segment, "open"/"close", task(now)) run once per trading day of the segment."""
    from backend.services.trading.orders.amo import release_amo_orders
    from backend.services.trading.orders.expiry import expire_day_orders
    from backend.services.trading.orders.settlement import settle_expiry

    jobs: list[tuple[str, str, str, Callable[[datetime], Any]]] = []
    for seg in SEGMENTS:
        jobs.append(("release_amo", seg, "open", lambda now, s=seg: release_amo_orders(s, now)))
        jobs.append(("expire_day_orders", seg, "close", lambda now, s=seg: expire_day_orders(s)))
    jobs.append(("settle_expiry", "NSE_FO", "close", lambda now: settle_expiry(now.astimezone(IST).date())))
    return jobs


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


def session_tasks_at(cal: NseCalendar, day: date, at: time) -> datetime:
    """When the session-close tasks run on ``day``: ``at`` IST, but never before the last segment
    close (a DAY F&O order must live to the F&O close)."""
    last = max(cal.session_close(day, seg) for seg in SEGMENTS)
    return max(datetime.combine(day, at, tzinfo=IST), last)


def _claim(key: str) -> bool:
    client = redis_store.client
    if client is None:
        return True
    return bool(client.set(key, b"1", nx=True, ex=3 * 24 * 3600))


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
                if _claim(f"square-off:{phase}:{segment}:{now.date().isoformat()}"):
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


class SessionScheduler(threading.Thread):
    """Checks every 30 s and runs the jobs that are due (``run_due``)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="market-sessions", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        hh, mm = (int(x) for x in app.config["SESSION_TASKS_TIME"].split(":"))
        self.at = time(hh, mm)
        self.done: set[tuple[str, str, date]] = set()

    def run_due(self, now: datetime) -> list[tuple[str, str, date]]:
        """Run, in this app's context, every job due at ``now`` not yet run today; returns them."""
        from backend.services import market_calendar

        ran: list[tuple[str, str, date]] = []
        day = now.astimezone(IST).date()
        with self.app.app_context():
            cal = market_calendar.calendar()
            for name, seg, edge, task in segment_jobs():
                key = (name, seg, day)
                if key in self.done or not cal.is_trading_day(day, seg):
                    continue
                at = cal.session_open(day, seg) if edge == "open" else cal.session_close(day, seg)
                if now < at or (edge == "open" and now >= cal.session_close(day, seg)):
                    continue  # not yet; or the session is over (AMOs then wait for the next open)
                if _claim(f"market-job:{name}:{seg}:{day.isoformat()}"):
                    result = task(now)
                    log.info("market job done", extra={"job": name, "segment": seg, "result": result})
                ran.append(key)
                self.done.add(key)
            key = ("session_close", "*", day)
            if (
                key not in self.done
                and cal.is_trading_day(day)
                and now >= session_tasks_at(cal, day, self.at)
                and _claim(f"session-close:{day.isoformat()}")
            ):
                run_session_close(day)
                ran.append(key)
            if cal.is_trading_day(day) and now >= session_tasks_at(cal, day, self.at):
                self.done.add(key)
        return ran

    def run(self) -> None:
        from backend.services import market_calendar

        while not self.stopped.wait(30):
            try:
                self.run_due(market_calendar.now(self.app))
            except Exception:  # noqa: BLE001 - retried on the next check
                log.exception("market-session scheduler failed")


def init_app(app: Flask) -> None:
    enabled = app.config.get("SESSION_SCHEDULER")
    if enabled is None:
        enabled = not app.config.get("TESTING")
    if enabled:
        scheduler = SessionScheduler(app)
        scheduler.start()
        app.extensions["session_scheduler"] = scheduler
        square = SquareOffScheduler(app)
        square.start()
        app.extensions["square_off_scheduler"] = square
        from backend.lifecycle import join_threads, on_shutdown

        def stop() -> None:
            scheduler.stopped.set()
            square.stopped.set()
            join_threads([scheduler, square], 10.0)

        on_shutdown(app, "session scheduler", stop)


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


@session_cli.command("open")
@click.option("--segment", type=click.Choice(SEGMENTS), help="Default: every segment open now.")
def open_cmd(segment: str | None) -> None:
    """Release queued paper AMOs of the segments open now."""
    from backend.services.trading.orders.amo import release_amo_orders

    click.echo(f"released: {release_amo_orders(segment)}")


@session_cli.command("square-off")
@click.option("--segment", default=None, help="EQ or FO; default: every segment.")
def square_off_cmd(segment: str | None) -> None:
    """Square off open intraday (I) positions of paper accounts now."""
    from backend.services.trading.orders import square_off

    click.echo(f"square_off: {square_off.square_off(segment)}")


@click.group("expiry", cls=AppGroup)
def expiry_cli() -> None:
    """F&O expiry tasks."""


@expiry_cli.command("settle")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Default: today (IST).")
@click.option(
    "--price",
    "prices",
    multiple=True,
    help="UNDERLYING=PRICE: the final settlement price, instead of the underlying's close from market data.",
)
def expiry_settle_cmd(day: datetime | None, prices: tuple[str, ...]) -> None:
    """Settle paper positions in contracts expired on or before the date (idempotent)."""
    from decimal import Decimal, InvalidOperation

    from backend.services.trading.orders.settlement import settle_expiry

    given = {}
    for item in prices:
        name, _, value = item.partition("=")
        try:
            price = Decimal(value)
        except InvalidOperation:
            price = Decimal(0)
        if not name.strip() or not price.is_finite() or price <= 0:
            raise click.BadParameter(
                f"{item!r}: expected UNDERLYING=PRICE, a positive price", param_hint="--price"
            )
        given[name.strip().upper()] = price
    target = day.date() if day else datetime.now(IST).date()
    result = settle_expiry(target, given)
    for key, value in result.items():
        click.echo(f"{key}: {value}")
    if result["failed"]:
        raise SystemExit(1)
