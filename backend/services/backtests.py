"""Backtest and sweep jobs: validate the request up front (422 before anything is queued), then run
the pure engine (backend.domain.backtest) in a job with data from the candle store or an uploaded CSV.

Costs: ``{"model": "flat", "rate": 0.002}`` (fraction per side, backtesting.py's convention) or
``{"model": "charges", "product": "D"|"I", "segment": "EQ"}`` — the paper broker's schedule from
``TRADING_CONFIG`` (backend/domain/charges.py), so a backtest pays what paper trading pays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
from flask import current_app

from backend.domain.backtest import BacktestConfig, BacktestResult, load_ohlcv_csv, render_chart, run_backtest
from backend.domain.backtest.data import load_ohlcv
from backend.domain.backtest.sweep import MAX_COMBINATIONS, run_sweep
from backend.domain.charges import ChargeSchedule, load_trading_config
from backend.domain.errors import Conflict, ValidationFailed
from backend.domain.orders.types import Product, Side
from backend.domain.strategies import SignalStrategy, StrategyFactory
from backend.models.strategies import BacktestJob
from backend.services import jobs, market_data

log = logging.getLogger(__name__)

KINDS = ("backtest", "sweep")


# --------------------------------------------------------------------------- costs


@lru_cache(maxsize=8)
def _schedule(path: str | None) -> ChargeSchedule:
    return load_trading_config(path).charges if path else ChargeSchedule.default()


def charges_cost_function(
    product: str = "D", segment: str = "EQ", schedule: ChargeSchedule | None = None
) -> Callable[[str, float, float], float]:
    """``cost(side, qty, price)`` from the paper broker's charge schedule (whole units, rupees)."""
    sched = schedule or _schedule(current_app.config.get("TRADING_CONFIG"))
    prod = Product(product)

    def cost(side: str, qty: float, price: float) -> float:
        units = int(round(qty))
        if units <= 0:
            return 0.0
        breakdown = sched.estimate(Side(side.upper()), prod, units, Decimal(repr(float(price))), segment)
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


def _load_data(params: dict[str, Any], csv_text: str | None) -> dict[str, np.ndarray]:
    if csv_text is not None:
        return load_ohlcv_csv(
            csv_text.encode("utf-8"),
            int(current_app.config["BACKTEST_MAX_CSV_BYTES"]),
            time_format=params.get("time_format"),
        )
    return load_ohlcv(_store_data(params["data"]))


def _validate_request(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Check everything that can be checked before queueing; returns (job params, csv text)."""
    strategy = _signal_strategy(data["strategy"], data.get("params"))
    build_config(data)
    csv_text = data.get("csv")
    if csv_text is not None:
        # Parse once now so a bad file is a 422 naming the rows, not a failed job.
        load_ohlcv_csv(
            csv_text.encode("utf-8"),
            int(current_app.config["BACKTEST_MAX_CSV_BYTES"]),
            time_format=data.get("time_format"),
        )
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
    return params, csv_text


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


def submit_backtest(user_id: int, data: dict[str, Any]) -> BacktestJob:
    params, csv_text = _validate_request(data)
    return jobs.submit(user_id, "backtest", params, csv_text)


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
    known = set(StrategyFactory.get(data["strategy"]).Params().fields)
    unknown = sorted(set(grid) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown parameter(s) in grid: {', '.join(unknown)}",
            details={"grid": {u: ["not a parameter of this strategy"] for u in unknown}},
        )
    params, csv_text = _validate_request(data)
    return jobs.submit(user_id, "sweep", params, csv_text)


def get(user_id: int, job_id: str) -> BacktestJob:
    return jobs.get_job(user_id, job_id, KINDS)


def cancel(user_id: int, job_id: str) -> BacktestJob:
    return jobs.cancel(user_id, job_id, KINDS)


def chart_png(user_id: int, job_id: str) -> bytes:
    job = jobs.get_job(user_id, job_id, ("backtest",))
    if job.status != "succeeded" or not job.result:
        raise Conflict(
            f"job {job_id} is {job.status}; the chart exists once it has succeeded",
            details={"status": job.status},
            code="JOB_NOT_READY",
        )
    res = job.result
    equity = np.array([np.nan if v is None else v for v in res["equity"]], dtype=np.float64)
    drawdown = np.array([np.nan if v is None else v for v in res["drawdown"]], dtype=np.float64)
    times = None
    if res.get("times"):
        try:
            times = np.array(res["times"], dtype="datetime64[s]")
        except ValueError:
            times = None
    result = BacktestResult([], None, equity, drawdown, np.zeros_like(equity), {}, times)
    title = f"{job.params.get('strategy')} {(job.params.get('data') or {}).get('symbol', 'CSV')}"
    return render_chart(result, title=title)


# --------------------------------------------------------------------------- job handlers


@jobs.handler("backtest")
def _run_backtest_job(ctx: jobs.JobContext) -> dict:
    p = ctx.params
    ctx.progress(0, 3)
    data = _load_data(p, ctx.input_csv)
    ctx.progress(1, 3)
    ctx.check_cancel()
    strategy = _signal_strategy(p["strategy"], p.get("params"))
    result = run_backtest(data, strategy, build_config(p))
    ctx.progress(3, 3)
    out = result.to_dict()
    out["strategy"] = p["strategy"]
    out["params"] = p.get("params", {})
    out["bars"] = int(data["close"].size)
    return out


@jobs.handler("sweep")
def _run_sweep_job(ctx: jobs.JobContext) -> dict:
    p = ctx.params
    data = _load_data(p, ctx.input_csv)
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
