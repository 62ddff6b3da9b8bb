"""Every rule kind on scripted paths, run against both engines (they must behave identically)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.alerts import RULE_KINDS, AlertEngine, AlertRule, NaiveAlertEngine
from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.market.types import Tick

T0 = datetime(2024, 1, 2, 9, 15, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tick(price, seconds: float = 0, symbol: str = "X", volume: int = 100) -> Tick:
    p = Decimal(str(price))
    return Tick(symbol=symbol, ltp=p, bid=p, ask=p, volume=volume, ts=at(seconds))


def run(engine, prices, symbol="X", step=1, volumes=None):
    """Feed prices one second apart; return the list of (tick index, rule_id) firings."""
    out = []
    for i, p in enumerate(prices):
        vol = volumes[i] if volumes else 100
        for f in engine.on_tick(tick(p, i * step, symbol, vol)):
            out.append((i, f.rule_id))
    return out


@pytest.fixture(params=[AlertEngine, NaiveAlertEngine], ids=["indexed", "naive"])
def engine(request):
    return request.param()


def rule(rid, kind, params, **kw):
    kw.setdefault("user_id", "u1")
    kw.setdefault("symbol", "X")
    return AlertRule(id=rid, kind=kind, params=params, **kw)


def test_registry_has_every_kind():
    assert set(RULE_KINDS) == {
        "price_above",
        "price_below",
        "cross_up",
        "cross_down",
        "pct_change",
        "volume_spike",
        "indicator",
        "position_pnl",
        "strategy_signal",
    }


# ---------------------------------------------------------------- level kinds


def test_price_above_fires_once_per_crossing_and_rearms(engine):
    engine.add(rule(1, "price_above", {"level": "100"}, recurring=True))
    fired = run(engine, [99, 101, 102, 103, 99, 100, 101, 105])
    # 101 fires; 102/103 stay above (no refire); 99 re-arms; 100 is not above; 101 fires again.
    assert fired == [(1, 1), (6, 1)]
    st = engine.state(1)
    assert st.fire_count == 2 and st.last_value == Decimal("101") and st.armed is False


def test_price_above_one_shot_completes(engine):
    engine.add(rule(1, "price_above", {"level": 100}))
    assert engine.active_count("u1") == 1
    assert run(engine, [99, 101, 99, 101]) == [(1, 1)]
    assert engine.state(1).done is True
    assert engine.active_count("u1") == 0


def test_price_above_fires_on_first_tick_when_already_above(engine):
    engine.add(rule(1, "price_above", {"level": 100}, recurring=True))
    assert run(engine, [105, 106]) == [(0, 1)]


def test_price_below_strict_and_rearm(engine):
    engine.add(rule(1, "price_below", {"level": 50}, recurring=True))
    assert run(engine, [51, 50, 49.99, 49, 50, 48]) == [(2, 1), (5, 1)]


def test_cross_up_needs_price_from_below(engine):
    engine.add(rule(1, "cross_up", {"level": 100}, recurring=True))
    # Already above on the first tick: not a crossing. 100 arms (<= level), 100.5 crosses.
    assert run(engine, [105, 104, 100, 100.5, 99, 101]) == [(3, 1), (5, 1)]


def test_cross_up_uses_last_price_seen_before_it_was_added(engine):
    engine.on_tick(tick(99, 0))
    engine.add(rule(1, "cross_up", {"level": 100}))
    assert [f.rule_id for f in engine.on_tick(tick(101, 1))] == [1]


def test_cross_down(engine):
    engine.add(rule(1, "cross_down", {"level": 95}, recurring=True))
    assert run(engine, [94, 96, 94, 93, 95, 90]) == [(2, 1), (5, 1)]


def test_gap_through_several_levels_fires_each(engine):
    for i, level in enumerate([101, 102, 103, 110]):
        engine.add(rule(i, "price_above", {"level": level}, recurring=True))
    engine.add(rule(9, "price_below", {"level": 104}, recurring=True))
    fired = engine.on_tick(tick(100, 0))
    assert [f.rule_id for f in fired] == [9]
    fired = engine.on_tick(tick(105, 1))
    assert [f.rule_id for f in fired] == [0, 1, 2]  # ordered by rule creation
    assert fired[0].price == Decimal("105") and fired[0].kind == "price_above"
    assert fired[0].fired_at == at(1) and fired[0].user_id == "u1" and fired[0].symbol == "X"
    assert fired[0].payload == {"level": "101"} and "above 101" in fired[0].message


def test_other_symbol_does_not_trigger(engine):
    engine.add(rule(1, "price_above", {"level": 100}))
    assert engine.on_tick(tick(200, 0, symbol="Y")) == []
    assert [f.rule_id for f in engine.on_tick(tick(101, 1))] == [1]


# ---------------------------------------------------------------- cooldown, expiry, pause


def test_cooldown_swallows_crossings_inside_the_window(engine):
    engine.add(rule(1, "price_above", {"level": 100}, recurring=True, cooldown_seconds=60))
    fired = []
    for t, p in [(0, 101), (5, 99), (10, 101), (20, 99), (70, 101), (75, 99), (80, 101)]:
        fired += [(t, f.rule_id) for f in engine.on_tick(tick(p, t))]
    # t=10 is inside 60 s of t=0: consumed, and it needs a new crossing (t=70) to fire again.
    assert fired == [(0, 1), (70, 1)]
    assert engine.state(1).suppressed_count == 2  # t=10 and t=80


def test_crossing_during_cooldown_does_not_fire_later_without_new_crossing(engine):
    engine.add(rule(1, "price_above", {"level": 100}, recurring=True, cooldown_seconds=60))
    fired = []
    for t, p in [(0, 101), (5, 99), (10, 101), (100, 102)]:
        fired += [(t, f.rule_id) for f in engine.on_tick(tick(p, t))]
    assert fired == [(0, 1)]


def test_expired_rule_is_dropped_lazily(engine):
    engine.add(rule(1, "price_above", {"level": 100}, recurring=True, expires_at=at(5)))
    engine.add(rule(2, "price_above", {"level": 100}, recurring=True))
    assert [f.rule_id for f in engine.on_tick(tick(99, 4))] == []
    assert len(engine) == 2
    assert [f.rule_id for f in engine.on_tick(tick(101, 5))] == [2]
    assert engine.pop_expired() == [1]
    assert engine.pop_expired() == []
    with pytest.raises(NotFound):
        engine.get(1)
    assert engine.active_count("u1") == 1


def test_expiry_also_applies_on_pnl_events(engine):
    engine.add(rule(1, "position_pnl", {"op": "above", "threshold": 0}, expires_at=at(1)))
    assert engine.on_pnl("u1", "X", Decimal("10"), at(2)) == []
    assert engine.pop_expired() == [1]


def test_pause_and_resume(engine):
    engine.add(rule(1, "price_above", {"level": 100}, recurring=True))
    engine.pause(1)
    assert engine.get(1).active is False
    assert run(engine, [101, 99]) == []
    engine.resume(1)
    # Still armed from before the pause, so the next tick above fires.
    assert [f.rule_id for f in engine.on_tick(tick(101, 10))] == [1]


def test_update_level_rederives_armed_state(engine):
    engine.add(rule(1, "cross_up", {"level": 100}, recurring=True))
    run(engine, [99, 101])  # fired, disarmed
    engine.update(1, params={"level": 105})
    assert engine.get(1).params == {"level": "105"}
    assert engine.state(1).armed is True  # last price 101 <= 105
    assert engine.state(1).fire_count == 1
    assert [f.rule_id for f in engine.on_tick(tick(106, 5))] == [1]


def test_remove_and_errors(engine):
    engine.add(rule(1, "price_above", {"level": 100}))
    with pytest.raises(Conflict):
        engine.add(rule(1, "price_above", {"level": 100}))
    engine.remove(1)
    assert run(engine, [101]) == []
    with pytest.raises(NotFound):
        engine.remove(1)
    with pytest.raises(NotFound):
        engine.update(99, params={"level": 1})
    engine.add(rule(2, "price_above", {"level": 100}))
    with pytest.raises(ValidationFailed):
        engine.update(2, params={"level": "x"})
    assert engine.get(2).params == {"level": "100"}  # a rejected update changes nothing


def test_per_user_cap():
    eng = AlertEngine(max_rules_per_user=2)
    eng.add(rule(1, "price_above", {"level": 100}))
    eng.add(rule(2, "price_above", {"level": 200}))
    with pytest.raises(ValidationFailed) as exc:
        eng.add(rule(3, "price_above", {"level": 300}))
    assert "2" in exc.value.message and exc.value.details["cap"] == 2
    eng.add(rule(4, "price_above", {"level": 300}, user_id="u2"))  # other user unaffected
    eng.on_tick(tick(150))  # rule 1 (one-shot) fires and completes: frees a slot
    eng.add(rule(3, "price_above", {"level": 300}))
    assert eng.active_count("u1") == 2


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("nope", {}),
        ("price_above", {}),
        ("price_above", {"level": "abc"}),
        ("price_above", {"level": -1}),
        ("price_above", {"level": "NaN"}),
        ("price_above", {"level": 1, "extra": 2}),
        ("pct_change", {"pct": 5, "window_seconds": 0}),
        ("pct_change", {"pct": 5, "window_seconds": 60, "direction": "sideways"}),
        ("volume_spike", {"factor": 2, "window": 1}),
        ("indicator", {"indicator": "macd"}),
        ("indicator", {"indicator": "rsi", "op": "above", "level": 120}),
        ("indicator", {"indicator": "sma_cross", "fast": 20, "slow": 10, "direction": "up"}),
        ("position_pnl", {"op": "sideways", "threshold": 1}),
        ("strategy_signal", {}),
    ],
)
def test_invalid_params_rejected(kind, params):
    with pytest.raises(ValidationFailed):
        rule(1, kind, params)


def test_invalid_common_fields_rejected():
    with pytest.raises(ValidationFailed):
        rule(1, "price_above", {"level": 1}, cooldown_seconds=-5)
    with pytest.raises(ValidationFailed):
        rule(1, "price_above", {"level": 1}, expires_at=datetime(2030, 1, 1))  # naive datetime
    with pytest.raises(ValidationFailed):
        rule(1, "price_above", {"level": 1}).with_changes(kind="price_below")


def test_rule_dict_roundtrip():
    r = rule(7, "pct_change", {"pct": 2.5, "window_seconds": 60}, recurring=True, expires_at=at(60))
    assert r.params == {"pct": "2.5", "window_seconds": 60, "direction": "abs"}
    assert AlertRule.from_dict(r.to_dict()) == r


# ---------------------------------------------------------------- non-level tick kinds


def test_pct_change_up_over_time_window(engine):
    engine.add(rule(1, "pct_change", {"pct": 5, "window_seconds": 60, "direction": "up"}, recurring=True))
    fired = []
    for t, p in [(0, 100), (10, 103), (20, 106), (30, 107), (90, 107), (100, 113)]:
        fired += [(t, f.payload["change_pct"]) for f in engine.on_tick(tick(p, t))]
    # 106 vs 100 = +6% fires; 107 still +7% (no refire); at t=90 the window [30, 90] starts at
    # 107 so the change is 0% (re-arm); at t=100 the reference is 107 (t=90): +5.6075% fires.
    assert fired == [(20, "6.0000"), (100, "5.6075")]


def test_pct_change_down_and_abs(engine):
    engine.add(rule("d", "pct_change", {"pct": 2, "window_seconds": 30, "direction": "down"}, recurring=True))
    engine.add(rule("a", "pct_change", {"pct": 2, "window_seconds": 30, "direction": "abs"}, recurring=True))
    fired = []
    for t, p in [(0, 100), (5, 101), (10, 97.9), (50, 98), (55, 100)]:
        fired += [(t, f.rule_id) for f in engine.on_tick(tick(p, t))]
    # t=10: -2.1% (both); t=50: window restarts (0%, re-arm); t=55: +2.04% (abs only).
    assert fired == [(10, "d"), (10, "a"), (55, "a")]


def test_volume_spike(engine):
    engine.add(rule(1, "volume_spike", {"factor": 2, "window": 3}, recurring=True))
    vols = [10, 10, 10, 50, 10, 10, 10, 100]
    fired = run(engine, [100] * len(vols), volumes=vols)
    # idx3: 50 > 2 x avg(10,10,10); idx4..6 below 2 x avg of the previous three; idx7 again.
    assert fired == [(3, 1), (7, 1)]


def test_indicator_rsi_above_on_one_second_bars(engine):
    engine.add(
        rule(
            1,
            "indicator",
            {"indicator": "rsi", "period": 3, "op": "above", "level": 70, "timeframe_seconds": 1},
            recurring=True,
        )
    )
    prices = [1, 2, 3, 4, 5, 4, 3, 2, 5, 6, 6]
    # One tick per 1 s bar. rsi(closes, 3) = [nan x3, 100, 100, 66.67, 44.44, 29.63, 71.85, 78.35, ..]
    # Bar i completes (and is evaluated) when the tick of bar i+1 arrives: firings at ticks 4 and 9.
    fired = []
    for i, p in enumerate(prices):
        fired += [(i, f.payload["rsi"], f.payload["bar_close"]) for f in engine.on_tick(tick(p, i))]
    assert fired == [(4, 100.0, "4"), (9, pytest.approx(71.8519, abs=1e-4), "5")]


def test_indicator_sma_cross_up_on_one_second_bars(engine):
    engine.add(
        rule(
            1,
            "indicator",
            {"indicator": "sma_cross", "fast": 2, "slow": 3, "direction": "up", "timeframe_seconds": 1},
            recurring=True,
        )
    )
    # sma2 = [nan, 10, 10, 10.5, 11.5, 10.5, 8.5, 10]; sma3 = [nan, nan, 10, 10.33, 11, 10.67, 9.67, 9.67]
    # fast > slow at bars 3 and 7 (after 10 == 10 and 8.5 < 9.67); seen on the next bar's first tick.
    assert run(engine, [10, 10, 10, 11, 12, 9, 8, 12, 12]) == [(4, 1), (8, 1)]


def test_indicator_rules_aggregate_ticks_into_bars_of_the_timeframe(engine):
    # Default timeframe: 60 s bars; the close is the last tick of the minute.
    engine.add(
        rule(1, "indicator", {"indicator": "rsi", "period": 2, "op": "above", "level": 60}, recurring=True)
    )
    assert engine.get(1).params["timeframe_seconds"] == 60
    out = []
    # minute 0 closes at 100 (the 99 and 105 inside it do not count), minute 1 at 101, minute 2 at 102.
    path = [(0, 99), (10, 105), (59, 100), (60, 90), (119.5, 101), (120, 50), (150, 102), (180, 102)]
    for s, p in path:
        out += [(s, f.payload["rsi"], f.payload["bar_close"]) for f in engine.on_tick(tick(p, s))]
    # closes 100, 101, 102 -> rsi(2) = 100 after bar 2, known at t=180 (first tick of minute 3).
    assert out == [(180, 100.0, "102")]


def test_indicator_skips_bars_without_ticks_and_counts_late_ticks_in_the_current_bar(engine):
    engine.add(
        rule(
            1,
            "indicator",
            {"indicator": "sma_cross", "fast": 1, "slow": 2, "direction": "down", "timeframe_seconds": 10},
            recurring=True,
        )
    )
    out = []
    # closes: bar0 = 10, bar5 = 12 (bars 1..4 had no tick), bar6 = 11 (the late tick stamped 55 s
    # arrives after one at 61 s and counts toward bar 6). After bar 5: SMA1 12 > SMA2 11 (arms);
    # after bar 6: 11 < 11.5 fires (had the 13 been the close, 13 > 12.5 would not).
    for s, p in [(1, 10), (50, 12), (61, 13), (55, 11), (70, 11)]:
        out += [(s, f.payload["sma_fast"], f.payload["sma_slow"]) for f in engine.on_tick(tick(p, s))]
    assert out == [(70, 11.0, 11.5)]
    assert [f.payload["sma_slow"] for f in engine.on_tick(tick(20, 80))] == []  # bar 7 = 11: equal, re-arms
    assert [f.payload["bar_close"] for f in engine.on_tick(tick(5, 90))] == []
    assert [f.payload["bar_close"] for f in engine.on_tick(tick(5, 100))] == ["5"]


# ---------------------------------------------------------------- P&L and signals


def test_position_pnl(engine):
    engine.add(rule(1, "position_pnl", {"op": "above", "threshold": 100}, recurring=True))
    engine.add(rule(2, "position_pnl", {"op": "below", "threshold": -50}, symbol="*", recurring=True))
    fired = []
    for i, (sym, pnl) in enumerate([("X", 50), ("X", 120), ("X", 130), ("X", 90), ("X", 110), ("*", -60)]):
        fired += [(i, f.rule_id, f.payload["pnl"]) for f in engine.on_pnl("u1", sym, Decimal(pnl), at(i))]
    assert fired == [(1, 1, "120"), (4, 1, "110"), (5, 2, "-60")]
    assert engine.on_pnl("someone-else", "X", Decimal(1000), at(9)) == []


def test_strategy_signal(engine):
    engine.add(rule(1, "strategy_signal", {"strategy": "ema_cross", "signal": "buy"}, recurring=True))
    engine.add(rule(2, "strategy_signal", {"strategy": "ema_cross"}, recurring=True, cooldown_seconds=10))
    engine.add(rule(3, "strategy_signal", {"strategy": "ema_cross"}, user_id="u2"))
    out = []
    for t, sig in [(0, "BUY"), (1, "SELL"), (2, "BUY"), (20, "SELL")]:
        out += [(t, f.rule_id) for f in engine.on_signal("ema_cross", "X", sig, at(t), user_id="u1")]
    # Every BUY fires rule 1; rule 2 takes any signal but has a 10 s cooldown; u2's rule is untouched.
    assert out == [(0, 1), (0, 2), (2, 1), (20, 2)]
    assert engine.on_signal("other", "X", "BUY", at(30)) == []
    fired = engine.on_signal("ema_cross", "X", "BUY", at(40), payload={"price": "101.5", "qty": 3})
    assert [f.rule_id for f in fired] == [1, 2, 3]  # user_id=None reaches every user
    assert fired[0].price == Decimal("101.5") and fired[0].payload["qty"] == 3
