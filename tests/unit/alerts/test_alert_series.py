"""Incremental per-symbol state: bar indicators vs backend.domain.indicators, O(1) windows vs brute force."""

import json
import random
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from backend.domain.alerts import AlertEngine, AlertRule, NaiveAlertEngine
from backend.domain.alerts.series import BarSeries, SymbolSeries
from backend.domain.errors import ValidationFailed
from backend.domain.indicators import rsi, sma
from backend.domain.market.types import Tick

T0 = datetime(2024, 1, 2, 9, 15, tzinfo=UTC)


def random_walk(n: int, seed: int) -> list[tuple[float, Decimal, int]]:
    """(seconds, price, volume) with irregular spacing, repeated prices and gaps of several bars."""
    rng = random.Random(seed)
    t, p, out = 0.0, Decimal(1000), []
    for _ in range(n):
        t += rng.choice([0.2, 0.5, 1, 3, 7, 40])
        p = max(Decimal("0.05"), p + Decimal(rng.choice([-3, -1, 0, 0, 1, 2, 5])) * Decimal("0.05"))
        out.append((t, p, rng.randint(1, 1000)))
    return out


def tick(t: float, p: Decimal, v: int = 1, symbol: str = "X") -> Tick:
    return Tick(symbol, p, p, p, v, T0 + timedelta(seconds=t))


@pytest.mark.parametrize("tf", [1, 5, 60])
def test_incremental_rsi_and_sma_match_the_indicator_library(tf):
    bars = BarSeries(tf)
    for period in (2, 14, 50):
        bars.require_rsi(period)
        bars.require_sma(period)
    expected_closes: list[Decimal] = []
    got: dict[int, list] = {p: [] for p in (2, 14, 50)}  # (rsi, sma) after each completed bar
    current, last_bar = None, None
    for t, p, _ in random_walk(6000, seed=tf):
        epoch = (T0 + timedelta(seconds=t)).timestamp()
        b = int(epoch // tf)
        completed = last_bar is not None and b > last_bar
        if completed:
            expected_closes.append(current)
        last_bar, current = b, p
        bars.observe(p, epoch)
        assert bars.just_closed == completed
        if not completed:
            continue
        assert bars.last_close == expected_closes[-1]
        for period in got:
            got[period].append((bars.rsi[period].value, bars.sma(period)))
            if bars.sma(period) is not None:
                # The rolling sum is exact: equal to the Decimal sum of the window.
                assert bars.sma(period) == sum(expected_closes[-period:], Decimal(0)) / period
    closes = np.array([float(c) for c in expected_closes])
    assert closes.size > 150  # long enough to warm up every period
    # The library indicators are causal: value k over all closes == value over closes[: k + 1].
    for period, values in got.items():
        ref_rsi, ref_sma = rsi(closes, period), sma(closes, period)
        for k, (r, m) in enumerate(values):
            if np.isnan(ref_rsi[k]):
                assert r is None
            else:
                assert abs(r - ref_rsi[k]) <= 1e-9
            if np.isnan(ref_sma[k]):
                assert m is None
            else:
                assert abs(float(m) - ref_sma[k]) <= 1e-9
        assert values[-1][0] is not None


def test_pct_change_reference_and_volume_sums_match_brute_force():
    s = SymbolSeries()
    for w in (1, 5, 30, 600):
        s.require_window(w)
    for w in (2, 7, 50):
        s.require_volumes(w)
    times, prices, vols = [], [], []
    for t, p, v in random_walk(5000, seed=11):
        s.observe(tick(t, p, v))
        epoch = (T0 + timedelta(seconds=t)).timestamp()
        times.append(epoch)
        prices.append(p)
        vols.append(v)
        for w in (1, 5, 30, 600):
            assert s.reference_price(w) == prices[bisect_left(times, epoch - w)]
        for w in (2, 7, 50):
            expected = sum(vols[-w - 1 : -1]) if len(vols) > w else None
            assert s.volume_average_sum(w) == expected
    assert len(s._ts) < 5000  # old history was dropped


def test_series_state_round_trips_exactly_and_continues_identically():
    s = SymbolSeries()
    s.require_window(30)
    s.require_volumes(5)
    s.bar_series(10).require_rsi(3)
    s.bar_series(10).require_sma(4)
    walk = random_walk(3000, seed=5)
    for t, p, v in walk[:1500]:
        s.observe(tick(t, p, v))
    restored = SymbolSeries()
    restored.load(json.loads(json.dumps(s.to_dict())))
    assert restored.to_dict() == s.to_dict()
    for t, p, v in walk[1500:]:
        s.observe(tick(t, p, v))
        restored.observe(tick(t, p, v))
        bs, rb = s.bars[10], restored.bars[10]
        assert (rb.just_closed, rb.rsi[3].value, rb.sma(4)) == (bs.just_closed, bs.rsi[3].value, bs.sma(4))
        assert restored.reference_price(30) == s.reference_price(30)
        assert restored.volume_average_sum(5) == s.volume_average_sum(5)
    assert restored.to_dict() == s.to_dict()


@pytest.mark.parametrize("engine_cls", [AlertEngine, NaiveAlertEngine])
def test_rules_on_same_symbol_timeframe_and_period_share_one_indicator_state(engine_cls):
    eng = engine_cls()
    for rid, (level, tf) in enumerate([(70, 60), (30, 60), (50, 60), (70, 300)]):
        params = {"indicator": "rsi", "period": 14, "op": "above", "level": level, "timeframe_seconds": tf}
        eng.add(AlertRule(rid, "u", "X", "indicator", params))
    eng.add(
        AlertRule(9, "u", "X", "indicator", {"indicator": "rsi", "period": 5, "op": "below", "level": 30})
    )
    series = eng._series["X"]
    assert sorted(series.bars) == [60, 300]
    assert sorted(series.bars[60].rsi) == [5, 14] and sorted(series.bars[300].rsi) == [14]


def test_restart_in_the_middle_of_a_bar_keeps_the_bar_and_the_indicator():
    params = {"indicator": "rsi", "period": 2, "op": "above", "level": 60, "timeframe_seconds": 60}
    # bar 0 closes at 100, bar 1 at 101 (not 95), bar 2 at 102 (not 90): RSI(2) = 100 after bar 2.
    path = [(0, 100), (60, 95), (100, 101), (130, 90), (170, 102), (180, 50)]

    def fresh():
        e = AlertEngine()
        e.add(AlertRule(1, "u", "X", "indicator", params, recurring=True))
        return e

    eng = fresh()
    for t, p in path[:4]:  # stop in the middle of bar 2
        assert eng.on_tick(tick(t, Decimal(p))) == []
    saved = json.loads(json.dumps(eng.export_state()))
    restarted, cold = fresh(), fresh()
    restarted.load_state(saved)
    for e in (restarted, cold):
        assert e.on_tick(tick(170, Decimal(102))) == []
    fired = restarted.on_tick(tick(180, Decimal(50)))
    assert [(f.rule_id, f.payload["rsi"], f.payload["bar_close"]) for f in fired] == [(1, 100.0, "102")]
    assert cold.on_tick(tick(180, Decimal(50))) == []  # without the saved state: no history, no RSI


@pytest.mark.parametrize("bad", [0, -60, 86401, "1m", True, 1.5])
def test_timeframe_seconds_is_validated(bad):
    with pytest.raises(ValidationFailed) as exc:
        AlertRule(
            1,
            "u",
            "X",
            "indicator",
            {"indicator": "sma_cross", "fast": 2, "slow": 5, "direction": "up", "timeframe_seconds": bad},
        )
    assert exc.value.details["field"] == "timeframe_seconds"


def test_timeframe_seconds_is_normalised_into_params():
    r = AlertRule(1, "u", "X", "indicator", {"indicator": "rsi", "op": "below", "level": 30})
    assert r.params == {
        "indicator": "rsi",
        "period": 14,
        "op": "below",
        "level": "30",
        "timeframe_seconds": 60,
    }
    r = AlertRule(
        2, "u", "X", "indicator", {"indicator": "rsi", "op": "below", "level": 30, "timeframe_seconds": "300"}
    )
    assert r.params["timeframe_seconds"] == 300
