"""Strategy base classes.

A strategy is a small object built from validated parameters. Two kinds exist:

* ``"signal"``: vectorised over OHLCV arrays, returns a target position per bar
  (see :class:`SignalStrategy`); used by the backtester and, bar by bar, live.
* ``"options"``: option structures (defined in ``strategies/options.py``).

Nothing here knows about Flask, the database or a broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import marshmallow
import numpy as np


class EmptyParams(marshmallow.Schema):
    """Param schema for strategies that take no parameters."""


class Strategy:
    """Base class of every registered strategy.

    Subclasses set ``name`` (via :func:`register`), ``kind``, ``description`` and ``Params``
    (their own marshmallow schema). ``__init__`` receives params already validated by
    ``Params().load`` (the factory does that), so it does not validate again.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "signal"
    description: ClassVar[str] = ""
    Params: ClassVar[type[marshmallow.Schema]] = EmptyParams

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# Column names accepted in an OHLCV mapping; arrays must all have the same length.
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")


def ohlcv_arrays(ohlcv: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Normalise an OHLCV mapping (keys case-insensitive) to float64 numpy arrays."""
    out: dict[str, np.ndarray] = {}
    for key, value in ohlcv.items():
        lk = str(key).lower()
        if lk in OHLCV_COLUMNS:
            out[lk] = np.asarray(value, dtype=np.float64)
    if "close" not in out:
        raise KeyError("OHLCV data needs at least a 'close' column")
    return out


class SignalStrategy(Strategy):
    """A strategy that maps OHLCV history to a target position per bar.

    ``target_positions`` is the vectorised core: for each bar *i* it returns the position
    wanted after bar *i* closes, using only data up to and including bar *i*:
    ``+1`` long, ``-1`` short, ``0`` flat, ``NaN`` "no opinion, keep what you hold"
    (e.g. during indicator warm-up or between crossover events).
    The backtester fills these targets at the next bar's open.
    """

    kind: ClassVar[str] = "signal"

    def warmup(self) -> int:
        """Bars of history needed before the first meaningful signal; live callers pass at least this many."""
        return 1

    def target_positions(self, ohlcv: Mapping[str, Any]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def entries_exits(self, ohlcv: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Long entry / exit boolean arrays derived from :meth:`target_positions`.

        ``entries[i]`` is True where the target becomes long at bar *i*, ``exits[i]`` where a
        long target is dropped (target 0 or -1).
        """
        target = self.target_positions(ohlcv)
        held = _ffill_zero(target)
        prev = np.concatenate(([0.0], held[:-1]))
        entries = (held > 0) & (prev <= 0)
        exits = (held <= 0) & (prev > 0)
        return entries, exits

    def signal_at_last_bar(self, ohlcv: Mapping[str, Any]) -> float:
        """Target position after the latest bar closes (live use).

        Built on the same vectorised function as the backtest, so live and backtest agree.
        Returns ``nan`` when the latest bar gives no new instruction (hold current position).
        """
        return float(self.target_positions(ohlcv)[-1])


def _ffill_zero(target: np.ndarray) -> np.ndarray:
    """Forward-fill NaN targets; leading NaNs become 0 (flat)."""
    target = np.asarray(target, dtype=np.float64)
    valid = ~np.isnan(target)
    idx = np.where(valid, np.arange(target.size), 0)
    np.maximum.accumulate(idx, out=idx)
    # leading NaNs point at index 0, which is itself NaN there, so they become 0
    return np.nan_to_num(target[idx], nan=0.0)
