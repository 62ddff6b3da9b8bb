"""Parameter sweep: run one strategy over a grid of parameters."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.domain import indicators
from backend.domain.backtest.annualise import infer
from backend.domain.backtest.data import load_ohlcv
from backend.domain.backtest.engine import BacktestConfig, run_backtest
from backend.domain.errors import ValidationFailed
from backend.domain.strategies.base import SignalStrategy
from backend.domain.strategies.registry import StrategyFactory

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]
MAX_COMBINATIONS = 10_000


@dataclass
class SweepResult:
    strategy: str
    param_names: list[str]
    rows: list[dict[str, Any]]  # {"params": {...}, "metrics": {...}} or {"params": {...}, "error": {...}}
    metric: str
    heatmap: dict[str, Any] | None = None  # only for exactly two swept params
    cancelled: bool = False
    completed: int = 0
    total: int = 0
    best: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        rows = [
            {**r, "metrics": {k: clean(v) for k, v in r["metrics"].items()}} if "metrics" in r else r
            for r in self.rows
        ]
        heat = None
        if self.heatmap is not None:
            heat = {**self.heatmap, "matrix": [[clean(v) for v in row] for row in self.heatmap["matrix"]]}
        return {
            "strategy": self.strategy,
            "param_names": self.param_names,
            "metric": self.metric,
            "rows": rows,
            "heatmap": heat,
            "cancelled": self.cancelled,
            "completed": self.completed,
            "total": self.total,
            "best": self.best,
        }


def run_sweep(
    data: Mapping[str, Any],
    strategy_name: str,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig | None = None,
    *,
    base_params: Mapping[str, Any] | None = None,
    metric: str = "sharpe",
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    every: int = 1,
) -> SweepResult:
    """Backtest every combination of ``grid`` (param name -> values) and collect metrics.

    Combinations whose params fail validation (e.g. ``fast >= slow``) are kept as rows with an
    ``error`` and show as ``nan`` in the heat map. Every ``every`` combinations ``progress(done,
    total)`` is called and ``should_cancel()`` checked; on cancellation the partial result is
    returned with ``cancelled=True``. With exactly two swept params, ``heatmap`` holds
    ``x_param``/``y_param``, their values and ``matrix[y][x]`` of ``metric``.
    """
    if not grid:
        raise ValidationFailed("empty parameter grid", details={"grid": ["at least one parameter"]})
    names = list(grid)
    value_lists = [list(grid[k]) for k in names]
    if any(not v for v in value_lists):
        raise ValidationFailed(
            "empty value list in grid", details={k: ["no values"] for k in names if not grid[k]}
        )
    total = math.prod(len(v) for v in value_lists)
    if total > MAX_COMBINATIONS:
        raise ValidationFailed(
            f"grid has {total} combinations, limit is {MAX_COMBINATIONS}",
            details={"grid": [f"at most {MAX_COMBINATIONS} combinations"]},
        )
    StrategyFactory.get(strategy_name)  # unknown name -> NotFound before any work
    cfg = config or BacktestConfig()
    cfg.validate()
    # parse and validate the bars once, not once per combination, into private read-only copies:
    # indicators computed on them are shared between combinations (indicators.shared_results)
    bars = {k: _frozen(v) for k, v in load_ohlcv(data).items()}
    ann = infer(bars.get("time"), cfg.market, cfg.periods_per_year)
    every = max(1, int(every))
    rows: list[dict[str, Any]] = []
    cancelled = False
    best: dict[str, Any] | None = None
    with indicators.shared_results():
        for done, combo in enumerate(itertools.product(*value_lists), start=1):
            params = {**(base_params or {}), **dict(zip(names, combo, strict=True))}
            row, value = _one(strategy_name, params, bars, cfg, ann, metric)
            if value is not None and (best is None or value > best["value"]):
                best = {"params": params, "value": value}
            rows.append(row)
            if done % every == 0 or done == total:
                if progress is not None:
                    progress(done, total)
                if should_cancel is not None and done < total and should_cancel():
                    cancelled = True
                    break
    heat = _heatmap(names, value_lists, rows, metric) if len(names) == 2 else None
    return SweepResult(strategy_name, names, rows, metric, heat, cancelled, len(rows), total, best)


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def _one(
    strategy_name: str,
    params: dict[str, Any],
    bars: Mapping[str, np.ndarray],
    cfg: BacktestConfig,
    ann: Any,
    metric: str,
) -> tuple[dict[str, Any], float | None]:
    """One combination: its row, and its metric when finite (for ``best``)."""
    try:
        strategy = StrategyFactory.create(strategy_name, params)
        assert isinstance(strategy, SignalStrategy)
        res = run_backtest(bars, strategy, cfg, validate=False, annualisation=ann)
    except ValidationFailed as exc:
        return {"params": params, "error": {"message": exc.message, "details": exc.details}}, None
    value = res.metrics.get(metric, float("nan"))
    return {"params": params, "metrics": res.metrics}, (value if math.isfinite(value) else None)


def _heatmap(
    names: list[str], value_lists: list[list[Any]], rows: list[dict[str, Any]], metric: str
) -> dict[str, Any]:
    xs, ys = value_lists[0], value_lists[1]
    matrix = np.full((len(ys), len(xs)), np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for r in rows:
        if "metrics" in r:
            matrix[yi[r["params"][names[1]]], xi[r["params"][names[0]]]] = r["metrics"].get(metric, np.nan)
    return {
        "x_param": names[0],
        "y_param": names[1],
        "x_values": xs,
        "y_values": ys,
        "matrix": matrix.tolist(),
    }
