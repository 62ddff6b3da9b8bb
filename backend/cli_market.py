"""``flask instruments load [FILE]`` and ``flask market-data sync SYMBOL``."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, time
from pathlib import Path

import click
from flask.cli import with_appcontext

from backend.domain.errors import DomainError
from backend.domain.market.calendar import IST


@click.group("instruments")
def instruments_cli() -> None:
    """Instrument master."""


@instruments_cli.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def load_cmd(file: Path | None) -> None:
    """Load an Upstox instrument file (JSON or CSV, optionally .gz); without FILE, the NSE seed
    set and the simulated market's current option series. Existing rows are updated, none deleted."""
    from backend.domain.market.instruments import parse_upstox_csv, parse_upstox_json, seed_instruments
    from backend.services import market_data as md

    try:
        if file is None:
            added, updated = md.upsert_instruments(seed_instruments())
            md.set_provider(None)
            md.invalidate_instruments()
            md.provider()  # the simulated provider lists current option series and stores new ones
            click.echo(f"seed: {added} added, {updated} updated; option series refreshed")
            return
        raw = file.read_bytes()
        if file.suffix == ".gz":
            raw = gzip.decompress(raw)
        name = file.name.removesuffix(".gz").lower()
        text = raw.decode("utf-8-sig")
        parsed = parse_upstox_json(text) if name.endswith(".json") else parse_upstox_csv(text)
        added, updated = md.upsert_instruments(parsed)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{file.name}: {len(parsed)} instruments read, {added} added, {updated} updated")


@click.group("market-data")
def market_data_cli() -> None:
    """Candle store."""


def _parse_when(value: str, end: bool) -> datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime.combine(d, time(23, 59, 59) if end else time(0, 0), tzinfo=IST).astimezone(UTC)
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD or an ISO datetime") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=IST)).astimezone(UTC)


@market_data_cli.command("sync")
@click.argument("symbol")
@click.option(
    "--interval", type=click.Choice(["1m", "5m", "15m", "1h", "1d"]), default="1d", show_default=True
)
@click.option("--from", "start", required=True, help="YYYY-MM-DD or ISO datetime (naive = Asia/Kolkata)")
@click.option("--to", "end", default=None, help="Default: now")
@with_appcontext
def sync_cmd(symbol: str, interval: str, start: str, end: str | None) -> None:
    """Fetch SYMBOL's candles from the active provider into the store (only missing spans)."""
    from backend.services import market_data as md

    a = _parse_when(start, end=False)
    b = _parse_when(end, end=True) if end else datetime.now(UTC)
    if b < a:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    try:
        report = md.sync_candles(symbol, interval, a, b)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    until = report.stored_until.isoformat() if report.stored_until else "-"
    click.echo(
        f"{report.symbol} {interval}: {report.added} bars added, {report.chunks} chunks fetched, "
        f"{report.skipped} already stored; complete up to {until}"
    )
    if report.error:
        raise click.ClickException(
            f"sync stopped: {report.error} (rows stored so far are kept; re-run to resume)"
        )


def register(app) -> None:
    app.cli.add_command(instruments_cli)
    app.cli.add_command(market_data_cli)
