"""Backtest and sweep jobs: validate the request up front (422 before anything is queued), then run
the pure engine (backend.domain.backtest) in a job with data from the candle store or an uploaded CSV.

Costs: ``{"model": "flat", "rate": 0.002}`` (fraction per side, backtesting.py's convention) or
``{"model": "charges", "product": "D"|"I", "segment": "EQ"}`` — the paper broker's schedule from
``TRADING_CONFIG`` (backend/domain/charges.py), so a backtest pays what paper trading pays.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import IO, Any

import numpy as np
from flask import current_app
from sqlalchemy import select

from backend.domain.backtest import BacktestConfig, BacktestResult, load_ohlcv_csv, render_chart, run_backtest
from backend.domain.backtest.data import load_ohlcv
from backend.domain.backtest.multi import PortfolioResult, run_portfolio
from backend.domain.backtest.sweep import MAX_COMBINATIONS, run_sweep
from backend.domain.charges import ChargeSchedule, load_trading_config
from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.orders.types import Product, Side
from backend.domain.strategies import SignalStrategy, StrategyFactory
from backend.extensions import db
from backend.models.strategies import BacktestJob, BacktestJobData
from backend.services import jobs, market_data
from backend.services.pagination import Page

log = logging.getLogger(__name__)

KINDS = ("backtest", "sweep", "portfolio")
# jobs whose result is an equity curve with trades (chart, trades, equity endpoints)
CURVE_KINDS = ("backtest", "portfolio")


# --------------------------------------------------------------------------- costs


@lru_cache(maxsize=8)
def _schedule(path: str | None) -> ChargeSchedule:
    return load_trading_config(path).charges if path else ChargeSchedule.default()


def charges_cost_function(
    product: str = "D", segment: str = "EQ", schedule: ChargeSchedule | None = None
) -> Callable[[str, float, float], float]:
    """``cost(side, qty, price, day)`` from the paper broker's charge schedule (whole units, rupees),
    at the rates in force on the trade's ``day`` (the engine passes each bar's date; None: today's)."""
    sched = schedule or _schedule(current_app.config.get("TRADING_CONFIG"))
    prod = Product(product)

    def cost(side: str, qty: float, price: float, day: date | None = None) -> float:
        units = int(round(qty))
        if units <= 0:
            return 0.0
        px = Decimal(repr(float(price)))
        breakdown = sched.estimate(Side(side.upper()), prod, units, px, segment, on=day)
        return float(breakdown.total)

    return cost


def build_config(params: dict[str, Any]) -> BacktestConfig:
    costs = params.get("costs") or {"model": "flat", "rate": 0.0}
    if costs.get("model") == "charges":
        commission: Any = charges_cost_function(costs.get("product", "D"), costs.get("segment", "EQ"))
    else:
        commission = float(costs.get("rate", 0.0))
    cfg = BacktestConfig(
        cash=float(params.get("cash", 10_000)),
        commission=commission,
        slippage=float(params.get("slippage", 0.0)),
        fractional=bool(params.get("fractional", False)),
        long_only=bool(params.get("long_only", True)),
        stop_loss=params.get("stop_loss"),
        take_profit=params.get("take_profit"),
        periods_per_year=(
            float(params["periods_per_year"]) if params.get("periods_per_year") is not None else None
        ),
        market=params.get("market") or "auto",
        risk_free=float(params.get("risk_free") or 0.0),
    )
    cfg.validate()
    return cfg


# --------------------------------------------------------------------------- data


def _signal_strategy(name: str, params: dict | None) -> SignalStrategy:
    cls = StrategyFactory.get(name)
    if cls.kind != "signal":
        raise ValidationFailed(
            f"{name!r} is an options strategy; backtests run signal strategies",
            details={"strategy": ["must be a signal strategy"]},
        )
    strategy = StrategyFactory.create(name, params)
    assert isinstance(strategy, SignalStrategy)
    return strategy


def _store_data(source: dict[str, Any]) -> dict[str, np.ndarray]:
    start = datetime.fromisoformat(source["start"]) if isinstance(source["start"], str) else source["start"]
    end = datetime.fromisoformat(source["end"]) if isinstance(source["end"], str) else source["end"]
    bars = market_data.candles(source["symbol"], source["interval"], start, end)
    if len(bars) < 2:
        raise ValidationFailed(
            f"only {len(bars)} bar(s) of {source['symbol']} {source['interval']} in that range",
            details={"data": ["need at least 2 bars"]},
        )
    return {
        "time": np.array([b.ts.replace(tzinfo=None) for b in bars], dtype="datetime64[s]"),
        "open": np.array([float(b.open) for b in bars]),
        "high": np.array([float(b.high) for b in bars]),
        "low": np.array([float(b.low) for b in bars]),
        "close": np.array([float(b.close) for b in bars]),
        "volume": np.array([float(b.volume) for b in bars]),
    }


def _load_data(
    params: dict[str, Any], csv_text: str | None, packed: bytes | None = None
) -> dict[str, np.ndarray]:
    if packed is not None:
        return unpack_arrays(packed)  # validated at submit
    if csv_text is not None:  # jobs queued before input_data existed
        return load_ohlcv_csv(
            csv_text.encode("utf-8"),
            int(current_app.config["BACKTEST_MAX_CSV_BYTES"]),
            time_format=params.get("time_format"),
        )
    return load_ohlcv(_store_data(params["data"]))


def _validate_request(
    data: dict[str, Any], upload: IO[bytes] | None = None
) -> tuple[dict[str, Any], bytes | None]:
    """Check everything that can be checked before queueing; returns (job params, parsed bars).

    A CSV (JSON ``csv`` text or an uploaded file) is parsed and validated here, once: a bad file is
    a 422 naming the rows, and the worker receives the arrays (npz), never the text.
    """
    data = _resolve_saved_strategy(data)
    strategy = _signal_strategy(data["strategy"], data.get("params"))
    build_config(data)
    csv_text = data.get("csv")
    packed = None
    if upload is not None or csv_text is not None:
        source: Any = upload if upload is not None else csv_text.encode("utf-8")
        bars = load_ohlcv_csv(
            source, int(current_app.config["BACKTEST_MAX_CSV_BYTES"]), time_format=data.get("time_format")
        )
        packed = pack_arrays(bars)
    elif data.get("data"):
        src = data["data"]
        market_data.get_instrument(src["symbol"])
        market_data.check_range(src["interval"], src["start"], src["end"])
    else:
        raise ValidationFailed(
            "give either 'data' (symbol, interval, start, end) or 'csv'",
            details={"data": ["data or csv is required"]},
        )
    params = _json_safe({k: v for k, v in data.items() if k != "csv"})
    params["params"] = _json_safe(strategy.params)
    return params, packed


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """npz (uncompressed: 1M bars pack and unpack in milliseconds) of named arrays."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _resolve_saved_strategy(data: dict[str, Any]) -> dict[str, Any]:
    """``saved_strategy: {id, version?}`` replaces ``strategy`` + ``params`` by that saved version."""
    ref = data.get("saved_strategy")
    if not ref:
        if not data.get("strategy"):
            raise ValidationFailed("strategy is required", details={"strategy": ["required"]})
        return data
    from backend.models.strategies import SavedStrategy, SavedStrategyVersion

    row = db.session.get(SavedStrategy, int(ref["id"]))
    if row is None or row.user_id != data.get("_user_id"):
        raise NotFound(f"saved strategy {ref['id']} not found", code="STRATEGY_NOT_FOUND")
    version = ref.get("version") or row.version
    snap = db.session.execute(
        select(SavedStrategyVersion.snapshot).where(
            SavedStrategyVersion.strategy_id == row.id, SavedStrategyVersion.version == version
        )
    ).scalar()
    if snap is None:
        raise NotFound(
            f"saved strategy {row.id} has no version {version}",
            details={"saved_strategy": {"version": [f"1..{row.version}"]}},
            code="STRATEGY_VERSION_NOT_FOUND",
        )
    out = {k: v for k, v in data.items() if k != "_user_id"}
    out["strategy"] = snap["strategy"]
    out["params"] = snap.get("params") or {}
    out["saved_strategy"] = {"id": row.id, "version": version}
    return out


def _json_safe(value: Any) -> Any:
    """Job params live in a JSON column: Decimal -> float (engine input), dates -> ISO strings."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- use cases


def submit_backtest(user_id: int, data: dict[str, Any], upload: IO[bytes] | None = None) -> BacktestJob:
    params, packed = _validate_request({**data, "_user_id": user_id}, upload)
    params.pop("_user_id", None)
    return jobs.submit(user_id, "backtest", params, input_data=packed)


def submit_sweep(user_id: int, data: dict[str, Any]) -> BacktestJob:
    grid = data["grid"]
    total = 1
    for name, values in grid.items():
        if not values:
            raise ValidationFailed("empty grid values", details={"grid": {name: ["at least one value"]}})
        total *= len(values)
    if total > MAX_COMBINATIONS:
        raise ValidationFailed(
            f"{total} combinations; the limit is {MAX_COMBINATIONS}",
            details={"grid": ["too many combinations"]},
        )
    data = _resolve_saved_strategy({**data, "_user_id": user_id})
    known = set(StrategyFactory.get(data["strategy"]).Params().fields)
    unknown = sorted(set(grid) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown parameter(s) in grid: {', '.join(unknown)}",
            details={"grid": {u: ["not a parameter of this strategy"] for u in unknown}},
        )
    params, packed = _validate_request({**data, "_user_id": user_id})
    params.pop("_user_id", None)
    return jobs.submit(user_id, "sweep", params, input_data=packed)


def get(user_id: int, job_id: str) -> BacktestJob:
    return jobs.get_job(user_id, job_id, KINDS)


def cancel(user_id: int, job_id: str) -> BacktestJob:
    return jobs.cancel(user_id, job_id, KINDS)


def chart_png(user_id: int, job_id: str) -> bytes:
    job = jobs.get_job(user_id, job_id, CURVE_KINDS)
    if job.status != "succeeded" or not job.result:
        raise Conflict(
            f"job {job_id} is {job.status}; the chart exists once it has succeeded",
            details={"status": job.status},
            code="JOB_NOT_READY",
        )
    art = _artifacts(job)
    equity, drawdown = art["equity"], art["drawdown"]
    times = art.get("times")
    result = BacktestResult([], None, equity, drawdown, np.zeros_like(equity), {}, times)
    if job.kind == "portfolio":
        title = (
            f"portfolio ({job.params.get('mode')}) {', '.join(s['symbol'] for s in job.params['symbols'])}"
        )
    else:
        title = f"{job.params.get('strategy')} {(job.params.get('data') or {}).get('symbol', 'CSV')}"
    return render_chart(result, title=title)


# --------------------------------------------------------------------------- job handlers


@jobs.handler("backtest")
def _run_backtest_job(ctx: jobs.JobContext) -> dict:
    p = ctx.params
    ctx.progress(0, 3)
    data = _load_data(p, ctx.input_csv, ctx.input_data)
    ctx.progress(1, 3)
    ctx.check_cancel()
    strategy = _signal_strategy(p["strategy"], p.get("params"))
    # every source was validated by its loader already (uploads at submit): no second pass
    result = run_backtest(data, strategy, build_config(p), validate=False)
    ctx.progress(3, 3)
    out = result.to_dict(include_curves=False)
    out.pop("trades")
    out["strategy"] = p["strategy"]
    out["params"] = p.get("params", {})
    out["bars"] = int(data["close"].size)
    out["num_trades"] = len(result.trades)
    _store_artifacts(ctx.job_id, result)
    return out


TRADE_FIELDS = (
    "entry_bar",
    "exit_bar",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "return_pct",
    "commission",
)


def _store_artifacts(job_id: str, result: BacktestResult | PortfolioResult) -> None:
    arrays: dict[str, np.ndarray] = {"equity": result.equity, "drawdown": result.drawdown}
    if result.times is not None:
        arrays["times"] = np.asarray(result.times).astype("datetime64[ns]")
    for name in TRADE_FIELDS:
        vals = [getattr(t, name) for t in result.trades]
        arrays[f"trade_{name}"] = np.asarray([-1 if v is None else v for v in vals], dtype=np.float64)
    arrays["trade_exit_reason"] = np.asarray([t.exit_reason for t in result.trades], dtype="U16")
    if isinstance(result, PortfolioResult):
        arrays["trade_symbol"] = np.asarray([t.symbol for t in result.trades], dtype="U64")
    db.session.merge(BacktestJobData(job_id=job_id, name="result", data=pack_arrays(arrays)))
    db.session.commit()


def _artifacts(job: BacktestJob) -> dict[str, np.ndarray]:
    if job.status != "succeeded":
        raise Conflict(
            f"job {job.id} is {job.status}; results exist once it has succeeded",
            details={"status": job.status},
            code="JOB_NOT_READY",
        )
    blob = db.session.execute(
        select(BacktestJobData.data).where(BacktestJobData.job_id == job.id, BacktestJobData.name == "result")
    ).scalar()
    if blob is None:
        raise NotFound(f"job {job.id} has no stored curve", code="JOB_NOT_FOUND")
    return unpack_arrays(blob)


def trades_page(user_id: int, job_id: str, limit: int, cursor: dict | None) -> Page:
    """Closed trades of a succeeded backtest, in entry order, ``limit`` at a time."""
    art = _artifacts(jobs.get_job(user_id, job_id, CURVE_KINDS))
    start = (cursor or {}).get("i", 0)
    n = art["trade_pnl"].size
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= n:
        raise ValidationFailed("cursor is malformed", details={"fields": {"cursor": ["Malformed cursor."]}})
    stop = min(n, start + limit)
    times = art.get("times")
    items = []
    for i in range(start, stop):
        row: dict[str, Any] = {name: float(art[f"trade_{name}"][i]) for name in TRADE_FIELDS}
        for k in ("entry_bar", "exit_bar"):
            row[k] = int(row[k])
        row["exit_reason"] = str(art["trade_exit_reason"][i])
        if "trade_symbol" in art:
            row["symbol"] = str(art["trade_symbol"][i])
        if times is not None:
            row["entry_time"] = _iso(times[row["entry_bar"]])
            row["exit_time"] = _iso(times[row["exit_bar"]])
        row["index"] = i
        items.append(row)
    return Page(items, {"i": stop} if stop < n else None)


def _iso(t: np.datetime64) -> str:
    return str(t.astype("datetime64[s]")) + "Z"


def equity_points(user_id: int, job_id: str, points: int) -> dict[str, Any]:
    """Equity for charts: at most ``points`` buckets, each its last value with the bucket's min
    and max (so no spike or drawdown disappears), plus the bucket's last timestamp."""
    art = _artifacts(jobs.get_job(user_id, job_id, CURVE_KINDS))
    eq, dd = art["equity"], art["drawdown"]
    n = eq.size
    buckets = max(1, min(points, n))
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:] - 1
    keep = ends >= starts
    starts, ends = starts[keep], ends[keep]
    out: dict[str, Any] = {
        "bars": int(n),
        "points": int(starts.size),
        "bar": ends.tolist(),
        "equity": eq[ends].tolist(),
        "equity_min": np.minimum.reduceat(eq, starts).tolist(),
        "equity_max": np.maximum.reduceat(eq, starts).tolist(),
        "drawdown_max": np.maximum.reduceat(dd, starts).tolist(),
    }
    times = art.get("times")
    out["time"] = [_iso(t) for t in times[ends]] if times is not None else None
    return out


def equity_csv(user_id: int, job_id: str) -> Iterator[str]:
    """The full curve as CSV lines (``bar,time,equity,drawdown``), generated in chunks."""
    art = _artifacts(jobs.get_job(user_id, job_id, CURVE_KINDS))
    eq, dd, times = art["equity"], art["drawdown"], art.get("times")
    yield "bar,time,equity,drawdown\n"
    chunk = 100_000
    for lo in range(0, eq.size, chunk):
        hi = min(eq.size, lo + chunk)
        t = (
            np.char.add(np.datetime_as_string(times[lo:hi].astype("datetime64[s]")), "Z")
            if times is not None
            else np.full(hi - lo, "")
        )
        lines = [
            f"{i},{ts},{e!r},{d!r}"
            for i, ts, e, d in zip(
                range(lo, hi), t.tolist(), eq[lo:hi].tolist(), dd[lo:hi].tolist(), strict=True
            )
        ]
        yield "\n".join(lines) + "\n"


@jobs.handler("sweep")
def _run_sweep_job(ctx: jobs.JobContext) -> dict:
    p = ctx.params
    data = _load_data(p, ctx.input_csv, ctx.input_data)
    base = {k: v for k, v in (p.get("params") or {}).items() if k not in p["grid"]}
    result = run_sweep(
        data,
        p["strategy"],
        p["grid"],
        build_config(p),
        base_params=base,
        metric=p.get("metric", "sharpe"),
        progress=ctx.progress,
        should_cancel=ctx.should_cancel,
    )
    return result.to_dict()


# --------------------------------------------------------------------------- portfolio backtests


def submit_portfolio(user_id: int, data: dict[str, Any]) -> BacktestJob:
    """Queue a multi-asset backtest on stored candles (``backend.domain.backtest.multi``).

    Checked before queueing: every symbol is known (404 ``UNKNOWN_SYMBOL`` naming all unknown ones),
    the range fits the interval, the costs, and each symbol's strategy and params (signals mode).
    """
    rows = data["symbols"]
    market_data.resolve([r["symbol"] for r in rows])  # 404 naming every unknown symbol at once
    canonical = {
        r["symbol"].strip().upper(): market_data.get_instrument(r["symbol"].strip()).trading_symbol
        for r in rows
    }
    if len(set(canonical.values())) != len(rows):
        raise ValidationFailed(
            "two entries name the same instrument",
            details={"fields": {"symbols": ["Each instrument once (an alias names the same one)."]}},
        )
    src = data["data"]
    market_data.check_range(src["interval"], src["start"], src["end"])
    build_config(data)
    symbols = []
    for i, r in enumerate(rows):
        row = {**r, "symbol": canonical[r["symbol"].strip().upper()]}
        if data["mode"] == "signals":
            try:
                row["params"] = _signal_strategy(r["strategy"], r.get("params")).params
            except ValidationFailed as exc:
                raise ValidationFailed(exc.message, details={"symbols": {i: exc.details}}) from None
        else:
            row.pop("strategy", None)
            row.pop("params", None)
        symbols.append(row)
    params = _json_safe({**data, "symbols": symbols})
    if data.get("schedule") is not None:
        params["schedule"] = [
            {
                "time": row["time"],
                "weights": {canonical.get(k.strip().upper(), k): w for k, w in row["weights"].items()},
            }
            for row in params["schedule"]
        ]
    return jobs.submit(user_id, "portfolio", params)


def _utc_naive(iso: str) -> np.datetime64:
    t = datetime.fromisoformat(iso)
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(t, "ns")


@jobs.handler("portfolio")
def _run_portfolio_job(ctx: jobs.JobContext) -> dict:
    p = ctx.params
    symbols = [r["symbol"] for r in p["symbols"]]
    total = len(symbols) + 2
    series = {}
    for i, sym in enumerate(symbols):  # one progress step per symbol's candles
        ctx.progress(i, total)
        ctx.check_cancel()
        series[sym] = _store_data({**p["data"], "symbol": sym})
    cfg = build_config(p)
    ctx.progress(len(symbols), total)
    kwargs: dict[str, Any] = {}
    if p["mode"] == "signals":
        kwargs["strategies"] = {
            r["symbol"]: _signal_strategy(r["strategy"], r.get("params")) for r in p["symbols"]
        }
        sizing = {r["symbol"]: r["weight"] for r in p["symbols"] if r.get("weight") is not None}
        if sizing:
            kwargs["sizing"] = sizing
    elif p.get("schedule"):
        kwargs["schedule"] = [(_utc_naive(row["time"]), row["weights"]) for row in p["schedule"]]
    else:
        kwargs["weights"] = {r["symbol"]: r["weight"] for r in p["symbols"]}
        kwargs["rebalance"] = (
            p["rebalance_bars"] if p.get("rebalance") == "bars" else p.get("rebalance", "once")
        )
    result = run_portfolio(series, cfg, **kwargs)
    ctx.progress(total - 1, total)
    ctx.check_cancel()
    out = result.to_dict(include_curves=False)
    out.pop("trades")
    out["bars"] = int(result.equity.size)
    out["num_trades"] = len(result.trades)
    _store_artifacts(ctx.job_id, result)
    ctx.progress(total, total)
    return out
