"""Alert service + evaluator against the database: every kind fires once, cooldown, expiry, restart."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.market.types import Tick
from backend.extensions import db
from backend.models.alerts import AlertEngineState, AlertHistory, AlertRuleRow
from backend.services import alerts

T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def tick(price, seconds: float = 0, symbol: str = "SBIN", volume: int = 100) -> Tick:
    p = Decimal(str(price))
    return Tick(symbol=symbol, ltp=p, bid=p, ask=p, volume=volume, ts=T0 + timedelta(seconds=seconds))


@pytest.fixture
def ctx(app, trader, monkeypatch):
    from backend.models import User

    with app.app_context():
        ev = alerts.AlertEvaluator(app)
        monkeypatch.setitem(app.extensions, "alerts", ev)
        emitted = []
        monkeypatch.setattr(alerts, "emit_alert", lambda uid, payload: emitted.append((uid, payload)))
        user = db.session.get(User, trader[0])
        yield user, ev, emitted


def feed(ev, prices, symbol="SBIN", volumes=None, step=1):
    out = []
    for i, p in enumerate(prices):
        for h in ev.on_tick(tick(p, i * step, symbol, volumes[i] if volumes else 100)):
            out.append((i, h.rule_id))
    return out


def make(user, kind, params, **kw):
    return alerts.create_rule(
        user, {"symbol": kw.pop("symbol", "SBIN"), "kind": kind, "params": params, **kw}
    )


def test_price_above_fires_once_per_crossing_writes_history_and_emits(ctx):
    user, ev, emitted = ctx
    r = make(user, "price_above", {"level": "100"}, recurring=True)
    assert feed(ev, [99, 101, 102, 99, 101]) == [(1, r.id), (4, r.id)]
    hist = db.session.scalars(db.select(AlertHistory).order_by(AlertHistory.id)).all()
    assert [(h.rule_id, h.price, h.is_test) for h in hist] == [(r.id, Decimal("101"), False)] * 2
    assert [uid for uid, _ in emitted] == [user.id, user.id]
    assert emitted[0][1]["price"] == "101.0000" and emitted[0][1]["rule_id"] == r.id
    row = db.session.get(AlertRuleRow, r.id)
    assert row.fire_count == 2 and row.status == "active" and row.state["armed"] is False


def test_one_shot_becomes_done_and_leaves_the_engine(ctx):
    user, ev, _ = ctx
    r = make(user, "price_below", {"level": "50"})
    assert feed(ev, [60, 49, 60, 40]) == [(1, r.id)]
    assert db.session.get(AlertRuleRow, r.id).status == "done"
    assert len(ev.engine) == 0
    with pytest.raises(Conflict):
        alerts.set_paused(user, r.id, False)


@pytest.mark.parametrize(
    "kind,params,prices,volumes,expected",
    [
        ("cross_up", {"level": "100"}, [101, 99, 100, 101, 102, 99, 103], None, [3, 6]),
        ("cross_down", {"level": "100"}, [99, 101, 99, 98, 101, 97], None, [2, 5]),
        (
            "pct_change",
            {"pct": "5", "window_seconds": 60, "direction": "up"},
            [100, 103, 106, 107],
            None,
            [2],
        ),
        ("volume_spike", {"factor": "2", "window": 3}, [100] * 8, [10, 10, 10, 50, 10, 10, 10, 100], [3, 7]),
        (
            "indicator",
            # 1 s bars, one tick each: bar i is evaluated when the tick of bar i+1 arrives.
            {"indicator": "rsi", "period": 3, "op": "above", "level": 70, "timeframe_seconds": 1},
            [1, 2, 3, 4, 5, 4, 3, 2, 5, 6, 6],
            None,
            [4, 9],
        ),
        (
            "indicator",
            {"indicator": "sma_cross", "fast": 2, "slow": 3, "direction": "up", "timeframe_seconds": 1},
            [10, 10, 10, 11, 12, 9, 8, 12, 12],
            None,
            [4, 8],
        ),
    ],
    ids=["cross_up", "cross_down", "pct_change", "volume_spike", "rsi", "sma_cross"],
)
def test_tick_kinds_through_the_service(ctx, kind, params, prices, volumes, expected):
    user, ev, _ = ctx
    r = make(user, kind, params, recurring=True)
    assert feed(ev, prices, volumes=volumes, step=10 if kind == "pct_change" else 1) == [
        (i, r.id) for i in expected
    ]
    assert db.session.get(AlertRuleRow, r.id).fire_count == len(expected)


def test_position_pnl_and_strategy_signal_through_the_service(ctx):
    user, ev, _ = ctx
    pnl = make(user, "position_pnl", {"op": "below", "threshold": "-500"}, recurring=True)
    sig = make(user, "strategy_signal", {"strategy": "ema_cross", "signal": "buy"})
    fired = []
    for i, v in enumerate([-100, -600, -700, -100, -800]):
        fired += [
            (i, h.rule_id) for h in alerts.on_pnl(user.id, "SBIN", Decimal(v), T0 + timedelta(seconds=i))
        ]
    assert fired == [(1, pnl.id), (4, pnl.id)]
    assert [h.rule_id for h in alerts.on_signal("ema_cross", "SBIN", "SELL", T0)] == []
    assert [h.rule_id for h in alerts.on_signal("ema_cross", "SBIN", "BUY", T0, user_id=user.id)] == [sig.id]
    assert alerts.on_signal("ema_cross", "SBIN", "BUY", T0 + timedelta(seconds=5)) == []  # one-shot: done
    assert db.session.get(AlertRuleRow, sig.id).status == "done"


def test_cooldown_swallows_crossings_inside_the_window(ctx):
    user, ev, _ = ctx
    r = make(user, "price_above", {"level": "100"}, recurring=True, cooldown_seconds=60)
    # crossings at t=1, 3 (inside 60 s: swallowed), 70 (fires)
    out = []
    for t, p in [(0, 99), (1, 101), (2, 99), (3, 101), (4, 99), (70, 101)]:
        out += [(t, h.rule_id) for h in ev.on_tick(tick(p, t))]
    assert out == [(1, r.id), (70, r.id)]
    assert ev.engine.state(r.id).suppressed_count == 1


def test_expiry_marks_rule_expired_without_firing(ctx):
    user, ev, _ = ctx
    r = make(user, "price_above", {"level": "100"}, expires_at=T0 + timedelta(seconds=5))
    assert feed(ev, [99, 99]) == []
    assert ev.on_tick(tick(150, 10)) == []  # past expiry: dropped before evaluation
    assert db.session.get(AlertRuleRow, r.id).status == "expired"
    assert len(ev.engine) == 0


def test_expires_at_in_the_past_is_refused(ctx):
    user, _, _ = ctx
    with pytest.raises(ValidationFailed) as exc:
        make(user, "price_above", {"level": "1"}, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert "expires_at" in exc.value.details["fields"]


def test_restart_never_refires_and_keeps_rearm_state(ctx, app):
    user, ev, _ = ctx
    r = make(user, "price_above", {"level": "100"}, recurring=True)
    assert feed(ev, [99, 101]) == [(1, r.id)]
    # A new evaluator (another worker taking over the feed) is built from the database only.
    ev2 = alerts.AlertEvaluator(app)
    assert ev2.on_tick(tick(102, 5)) == []  # still above: the crossing already fired
    assert ev2.on_tick(tick(99, 6)) == []  # re-arms
    ev2.checkpoint()  # persisted periodically; here explicitly
    ev3 = alerts.AlertEvaluator(app)
    assert [h.rule_id for h in ev3.on_tick(tick(101, 7))] == [r.id]  # the re-arm survived too
    assert db.session.get(AlertRuleRow, r.id).fire_count == 2


def test_restart_restores_series_for_window_kinds(ctx, app):
    user, ev, _ = ctx
    r = make(user, "cross_up", {"level": "100"}, recurring=True)
    ev.on_tick(tick(99, 0))
    ev.checkpoint()
    assert db.session.get(AlertEngineState, "series").data["SBIN"]
    ev2 = alerts.AlertEvaluator(app)
    assert [h.rule_id for h in ev2.on_tick(tick(101, 1))] == [r.id]


def test_pause_resume_and_delete_apply_to_the_running_engine(ctx):
    user, ev, _ = ctx
    r = make(user, "price_above", {"level": "100"}, recurring=True)
    ev.load()
    alerts.set_paused(user, r.id, True)
    assert feed(ev, [99, 101]) == []
    alerts.set_paused(user, r.id, False)
    assert [h.rule_id for h in ev.on_tick(tick(99, 3))] == []
    assert [h.rule_id for h in ev.on_tick(tick(102, 4))] == [r.id]
    alerts.delete_rule(user, r.id)
    assert len(ev.engine) == 0
    with pytest.raises(NotFound):
        alerts.get_rule(user, r.id)


def test_rules_changed_by_another_worker_are_synced(ctx, app):
    user, ev, _ = ctx
    ev.load()
    ev.sync_every = 0
    app.extensions["alerts"] = None  # as if created in another process: this evaluator is not told
    r = make(user, "price_above", {"level": "100"})
    app.extensions["alerts"] = ev
    assert [h.rule_id for h in ev.on_tick(tick(101, 1))] == [r.id]


def test_per_user_cap(ctx, app, monkeypatch):
    user, _, _ = ctx
    monkeypatch.setitem(app.config, "ALERTS_MAX_RULES_PER_USER", 2)
    make(user, "price_above", {"level": "1"})
    b = make(user, "price_above", {"level": "2"})
    with pytest.raises(ValidationFailed):
        make(user, "price_above", {"level": "3"})
    alerts.delete_rule(user, b.id)
    make(user, "price_above", {"level": "3"})


def test_invalid_params_name_the_field(ctx):
    user, _, _ = ctx
    with pytest.raises(ValidationFailed) as exc:
        make(user, "pct_change", {"pct": "-1", "window_seconds": 10})
    assert exc.value.details["fields"] == {"params": ["param 'pct' must be > 0"]}
    assert db.session.scalar(db.select(db.func.count(AlertRuleRow.id))) == 0


def test_test_fire_writes_a_flagged_history_row(ctx):
    user, ev, emitted = ctx
    r = make(user, "price_above", {"level": "100"})
    h = alerts.test_fire(user, r.id)
    assert h.is_test and h.rule_id == r.id and "Test notification" in h.message
    assert emitted[0][1]["test"] is True
    assert db.session.get(AlertRuleRow, r.id).fire_count == 0
