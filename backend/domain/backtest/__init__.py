"""Backtesting engine, multi-asset portfolios, CSV loader, parameter sweep and chart renderer."""

from backend.domain.backtest.chart import render_chart
from backend.domain.backtest.data import load_ohlcv_csv
from backend.domain.backtest.engine import (
    BacktestConfig,
    BacktestResult,
    Trade,
    compute_metrics,
    run_backtest,
)
from backend.domain.backtest.multi import PortfolioResult, run_portfolio
from backend.domain.backtest.sweep import SweepResult, run_sweep

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "PortfolioResult",
    "SweepResult",
    "Trade",
    "compute_metrics",
    "load_ohlcv_csv",
    "render_chart",
    "run_backtest",
    "run_portfolio",
    "run_sweep",
]
