"""Built-in vectorised signal strategies.

Each ``target_positions`` uses only data up to and including bar *i* to produce the target for
bar *i* (evaluated on bar close; the backtester fills at the next bar's open). Values: ``+1``
long, ``-1`` short (flat in long-only backtests), ``NaN`` keep the current position.

Crossover tie rule (same as backtesting.py's ``crossover``): ``a`` crosses above ``b`` at bar *i*
iff ``a[i-1] < b[i-1]`` and ``a[i] > b[i]`` (both strict), so touching without crossing, or
a move that passes through exact equality, is not a crossover. Comparisons with NaN are False.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from backend.domain import indicators as ind
from backend.domain.strategies.base import SignalStrategy, ohlcv_arrays
from backend.domain.strategies.registry import register


def crossover(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean array: ``a`` crosses strictly above ``b`` at each bar (False at bar 0)."""
    out = np.zeros(a.size, dtype=bool)
    if a.size > 1:
        with np.errstate(invalid="ignore"):
            np.less(a[:-1], b[:-1], out=out[1:])  # written in place: one temporary instead of three
            out[1:] &= a[1:] > b[1:]
    return out


def events_to_target(up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """``+1`` where ``up``, ``-1`` where ``down`` (``up`` wins if both), else NaN (hold)."""
    target = np.full(up.size, np.nan)
    target[down] = -1.0
    target[up] = 1.0
    return target


def _period(default: int, description: str) -> fields.Integer:
    # strict: 10.5 (or "10") is refused instead of silently running as 10
    return fields.Integer(
        strict=True,
        load_default=default,
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": description},
    )


class _FastSlowParams(Schema):
    fast = _period(10, "fast moving-average period (bars)")
    slow = _period(20, "slow moving-average period (bars)")

    @validates_schema
    def _fast_below_slow(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("fast") is not None and data.get("slow") is not None and data["fast"] >= data["slow"]:
            raise ValidationError("must be smaller than slow", field_name="fast")


@register("sma_crossover")
class SmaCrossover(SignalStrategy):
    description = "Long when the fast SMA of close crosses above the slow SMA; short/flat on the cross below."
    Params = _FastSlowParams
    _ma = staticmethod(ind.sma)

    def warmup(self) -> int:
        return int(self.params["slow"]) + 1

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:
        close = ohlcv_arrays(ohlcv)["close"]
        fast = self._ma(close, self.params["fast"])
        slow = self._ma(close, self.params["slow"])
        return events_to_target(crossover(fast, slow), crossover(slow, fast))


@register("ema_crossover")
class EmaCrossover(SmaCrossover):
    description = "Long when the fast EMA of close crosses above the slow EMA; short/flat on the cross below."
    _ma = staticmethod(ind.ema)


class _RsiParams(Schema):
    period = _period(14, "RSI period (Wilder)")
    lower = fields.Float(
        load_default=30.0, validate=validate.Range(min=0, max=100), metadata={"description": "buy below"}
    )
    upper = fields.Float(
        load_default=70.0, validate=validate.Range(min=0, max=100), metadata={"description": "sell above"}
    )

    @validates_schema
    def _lower_below_upper(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("lower") is not None and data.get("upper") is not None and data["lower"] >= data["upper"]:
            raise ValidationError("must be smaller than upper", field_name="lower")


@register("rsi_mean_reversion")
class RsiMeanReversion(SignalStrategy):
    description = "Long while RSI is below `lower` (oversold), short/flat while above `upper`; else hold."
    Params = _RsiParams

    def warmup(self) -> int:
        return int(self.params["period"]) + 1

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:
        r = ind.rsi(ohlcv_arrays(ohlcv)["close"], self.params["period"])
        with np.errstate(invalid="ignore"):
            return events_to_target(r < self.params["lower"], r > self.params["upper"])


class _MacdParams(Schema):
    fast = _period(12, "fast EMA period")
    slow = _period(26, "slow EMA period")
    signal = _period(9, "signal EMA period")

    @validates_schema
    def _fast_below_slow(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("fast") is not None and data.get("slow") is not None and data["fast"] >= data["slow"]:
            raise ValidationError("must be smaller than slow", field_name="fast")


@register("macd")
class MacdCross(SignalStrategy):
    description = "Long when the MACD line crosses above its signal line; short/flat on the cross below."
    Params = _MacdParams

    def warmup(self) -> int:
        return int(self.params["slow"]) + int(self.params["signal"])

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:
        line, sig, _ = ind.macd(
            ohlcv_arrays(ohlcv)["close"], self.params["fast"], self.params["slow"], self.params["signal"]
        )
        return events_to_target(crossover(line, sig), crossover(sig, line))


class _BollingerParams(Schema):
    period = _period(20, "band period (SMA and std)")
    k = fields.Float(
        load_default=2.0,
        validate=validate.Range(min=0, min_inclusive=False, max=10),
        metadata={"description": "band width in std"},
    )


@register("bollinger_breakout")
class BollingerBreakout(SignalStrategy):
    description = "Long when close ends above the upper band, short/flat when it ends below the lower band."
    Params = _BollingerParams

    def warmup(self) -> int:
        return int(self.params["period"])

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:
        close = ohlcv_arrays(ohlcv)["close"]
        _, upper, lower = ind.bollinger(close, self.params["period"], self.params["k"])
        with np.errstate(invalid="ignore"):
            return events_to_target(close > upper, close < lower)


class _DonchianParams(Schema):
    period = _period(20, "channel lookback (bars, excluding the current bar)")


@register("donchian_breakout")
class DonchianBreakout(SignalStrategy):
    description = (
        "Long when close exceeds the highest high of the previous `period` bars, "
        "short/flat when it falls below their lowest low."
    )
    Params = _DonchianParams

    def warmup(self) -> int:
        return int(self.params["period"]) + 1

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:
        a = ohlcv_arrays(ohlcv)
        close = a["close"]
        high = a.get("high", close)
        low = a.get("low", close)
        p = self.params["period"]
        upper = np.concatenate(([np.nan], ind.rolling_max(high, p)[:-1]))  # channel of the previous bars
        lower = np.concatenate(([np.nan], ind.rolling_min(low, p)[:-1]))
        with np.errstate(invalid="ignore"):
            return events_to_target(close > upper, close < lower)
