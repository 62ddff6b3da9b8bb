"""Built-in signal strategies: hand-built series with known signal bars."""

from __future__ import annotations

import numpy as np

from backend.domain.strategies import StrategyFactory
from backend.domain.strategies.signals import crossover


def test_crossover_tie_rule() -> None:
    a = np.array([1.0, 2.0, 3.0, 3.0, 4.0, 2.0, 3.0])
    b = np.array([2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 2.0])
    # bar 2: prev equal (2 == 2) -> no cross; bar 4: prev equal -> no cross; bar 6: 2<3 then 3>2 -> cross
    np.testing.assert_array_equal(np.flatnonzero(crossover(a, b)), [6])
    np.testing.assert_array_equal(np.flatnonzero(crossover(b, a)), [5])
    assert not crossover(np.array([np.nan, 2.0]), np.array([1.0, 1.0])).any()


def test_sma_crossover_targets_and_last_bar() -> None:
    close = np.array([5, 4, 3, 2, 3, 4, 5, 4, 3, 2], dtype=float)
    s = StrategyFactory.create("sma_crossover", {"fast": 1, "slow": 3})
    t = s.target_positions({"close": close})
    # sma3: nan nan 4 3 2.667 3 4 4.333 4 3 ; close crosses above at bar 4, below at bar 7
    np.testing.assert_array_equal(np.flatnonzero(t == 1), [4])
    np.testing.assert_array_equal(np.flatnonzero(t == -1), [7])
    assert np.isnan(s.signal_at_last_bar({"close": close}))
    assert s.signal_at_last_bar({"Close": close[:5]}) == 1.0  # live: same function, latest bar only
    entries, exits = s.entries_exits({"close": close})
    np.testing.assert_array_equal(np.flatnonzero(entries), [4])
    np.testing.assert_array_equal(np.flatnonzero(exits), [7])


def test_rsi_mean_reversion_levels() -> None:
    close = np.array([10, 9, 8, 7, 6, 7, 8, 9, 10, 11, 12], dtype=float)
    s = StrategyFactory.create("rsi_mean_reversion", {"period": 2, "lower": 20, "upper": 80})
    t = s.target_positions({"close": close})
    assert np.isnan(t[:2]).all()
    assert (t[2:5] == 1).all()  # only losses: RSI 0
    assert (t[8:] == -1).all()  # recovering strongly: RSI above 80


def test_macd_and_ema_cross_signals_alternate() -> None:
    x = np.sin(np.linspace(0, 12 * np.pi, 600)) * 10 + 100
    for name, params in (
        ("macd", {"fast": 5, "slow": 12, "signal": 4}),
        ("ema_crossover", {"fast": 5, "slow": 20}),
    ):
        t = StrategyFactory.create(name, params).target_positions({"close": x})
        events = t[~np.isnan(t)]
        assert events.size >= 10
        assert np.all(events[1:] != events[:-1])  # a cross up is always followed by a cross down


def test_bollinger_breakout() -> None:
    close = np.array([10.0] * 20 + [12.0, 10.0, 5.0])
    t = StrategyFactory.create("bollinger_breakout", {"period": 20, "k": 2}).target_positions(
        {"close": close}
    )
    assert t[20] == 1 and np.isnan(t[21]) and t[22] == -1
    assert np.isnan(t[:20]).all()


def test_donchian_breakout_uses_previous_bars_only() -> None:
    high = np.array([10, 11, 12, 11, 13, 12, 9], dtype=float)
    low = high - 1
    close = np.array([9.5, 10.5, 11.5, 10.5, 12.5, 11, 7], dtype=float)
    t = StrategyFactory.create("donchian_breakout", {"period": 2}).target_positions(
        {"high": high, "low": low, "close": close}
    )
    # bar 2: 11.5 > max(high[0:2]) = 11 -> long; bar 3: 10.5 is inside [10, 12] -> hold;
    # bar 4: 12.5 > max(high[2:4]) = 12 -> long; bar 6: 7 < min(low[4:6]) = 11 -> short
    assert t[2] == 1 and t[4] == 1 and t[6] == -1
    assert np.isnan(t[[0, 1, 3, 5]]).all()
