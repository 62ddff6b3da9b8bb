"""Broker rules for risk and positions, each written as the scenario a trader goes through.

Prices (FakeMarket: bid = ltp - 0.05, ask = ltp + 0.05; MARKET fills 5 bps beyond the touch, rounded
against the trader to the 0.05 tick):
  BUY SBIN at ltp 800: 800.05 x 1.0005 = 800.450025 -> 800.50
  SELL SBIN at ltp 750: 749.95 x 0.9995 = 749.575025 -> 749.55
  BUY RELIANCE at 1000: 1000.60; SELL at 950: 949.95 x 0.9995 = 949.475025 -> 949.45
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

D = Decimal
events = trading_support.events  # shared fixture
market = trading_support.market  # shared fixture
P = "/api/v1/portfolio"
URL = "/api/v1/orders"


def _place(client, h, **kw):
    r = client.post(URL, json=order_body(**kw), headers=h)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _refused(client, h, **kw) -> list[str]:
    r = client.post(URL, json=order_body(**kw), headers=h)
    assert r.status_code == 422, r.get_json()
    return [c["name"] for c in r.get_json()["error"]["details"]["checks"]]


def _account_id(client, h) -> int:
    return client.get(f"{P}/accounts", headers=h).get_json()[0]["id"]


def _tighten(client, h, **overrides):
    r = client.patch(f"{P}/accounts/{_account_id(client, h)}/risk", json={"overrides": overrides}, headers=h)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _positions(client, h) -> dict[tuple[str, str], int]:
    return {
        (p["symbol"], p["product"]): p["quantity"] for p in client.get(f"{P}/positions", headers=h).get_json()
    }


def _tick(app, market, symbol, ltp):
    from backend.services.trading import orders

    with app.app_context():
        market.set(symbol, ltp)
        orders.on_tick(market.as_tick(symbol))


# --------------------------------------------------------------------------- finding 1


def test_after_the_daily_loss_trip_the_stop_still_exits(client, trader, market, app):
    """Long 100 SBIN with a stop at 760; another position's loss trips the daily limit (HALTED);
    at 750 the stop's exit is accepted and the position is flat, while new risk stays refused."""
    _, h = trader
    _tighten(client, h, daily_loss_limit="5000")
    sbin = _place(client, h, symbol="SBIN", quantity=100)
    assert D(sbin["average_price"]) == D("800.50")
    r = client.put(f"{P}/positions/SBIN/stops", json={"stop_loss": "760"}, headers=h)
    assert r.status_code == 200
    _place(client, h, symbol="RELIANCE", quantity=100)
    market.set("RELIANCE", "950")
    r = client.post(f"{P}/positions/RELIANCE/close", headers=h)
    # realised 100 x (949.45 - 1000.60) = -5115 (before charges) >= 5000: HALTED
    assert r.status_code == 201 and D(r.get_json()["average_price"]) == D("949.45")
    risk = client.get(f"{P}/accounts/{sbin['account_id']}/risk", headers=h).get_json()
    assert risk["trading_state"] == "HALTED"
    assert set(_refused(client, h, symbol="INFY", quantity=1)) == {"trading_state", "daily_loss_limit"}

    _tick(app, market, "SBIN", "750")
    assert _positions(client, h) == {}
    done = client.get(URL, query_string={"symbol": "SBIN", "status": "filled"}, headers=h).get_json()["items"]
    stop_exit = next(o for o in done if o["tag"] == "stop_loss")
    assert stop_exit["side"] == "SELL" and D(stop_exit["average_price"]) == D("749.55")
    check_invariants(app, sbin["account_id"])


class _OperatorHold:
    """A refusal for a reason outside the trader's control (an operator-added check)."""

    name = "operator_hold"

    def run(self, ctx):
        from backend.domain.risk import CheckResult

        return [CheckResult(self.name, "held by the operator")]


@pytest.fixture
def refusing_coordinator(app):
    from backend.domain.risk import DEFAULT_CHECKS, RiskCoordinator
    from backend.services.trading.common import trading_config

    def engage():
        with app.app_context():
            cfg = trading_config()
            app.extensions["trading_coordinator"] = RiskCoordinator(
                cfg.charges, cfg.fills.market_collar_pct, checks=(*DEFAULT_CHECKS, _OperatorHold())
            )

    def release():
        app.extensions.pop("trading_coordinator", None)

    yield engage, release
    release()


def test_a_refused_stop_exit_keeps_the_stop_and_tells_the_trader(
    client, trader, market, app, events, refusing_coordinator, monkeypatch
):
    from backend.extensions import db
    from backend.models import AuditLog
    from backend.services.trading.orders import stops

    user_id, h = trader
    engage, release = refusing_coordinator
    _place(client, h, symbol="SBIN", quantity=100)
    client.put(f"{P}/positions/SBIN/stops", json={"stop_loss": "760"}, headers=h)
    engage()
    _tick(app, market, "SBIN", "750")
    pos = client.get(f"{P}/positions", headers=h).get_json()
    assert pos[0]["quantity"] == 100 and pos[0]["stops"]["stop_loss"] == "760"  # the stop stays
    refused = [p for u, e, p in events if e == "stop_exit_rejected"]
    assert len(refused) == 1 and refused[0]["symbol"] == "SBIN" and refused[0]["stop_kept"] is True
    assert refused[0]["checks"][0]["name"] == "operator_hold"
    with app.app_context():
        actions = list(db.session.scalars(select(AuditLog.action)))
        assert actions.count("trading.stop_exit_rejected") == 1
    rejected = client.get(URL, query_string={"status": "rejected"}, headers=h).get_json()["items"]
    assert [o["tag"] for o in rejected] == ["stop_loss"]

    # a later tick inside the retry interval does not try again
    _tick(app, market, "SBIN", "749")
    assert len([e for _, e, _ in events if e == "stop_exit_rejected"]) == 1
    # once the refusal's cause is gone, the next due tick exits and clears the stop
    release()
    monkeypatch.setattr(stops, "STOP_RETRY_SECONDS", 0)
    _tick(app, market, "SBIN", "748")
    assert _positions(client, h) == {}
    assert any(u == user_id and e == "fill" for u, e, _ in events)


# --------------------------------------------------------------------------- finding 2


def test_order_value_and_order_count_limits_never_block_a_close(client, trader, market, app):
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=240)  # 240 x 800.50 = 1,92,120
    _place(client, h, symbol="RELIANCE", quantity=10)
    _place(client, h, symbol="INFY", quantity=2)
    _tighten(client, h, max_order_value="100000", max_orders_per_day=3)
    assert set(_refused(client, h, symbol="SBIN", quantity=200)) == {"max_order_value", "max_orders_per_day"}
    # the close of 1.92 lakh is larger than max_order_value and is the 4th order of 3: allowed whole
    r = client.post(f"{P}/positions/SBIN/close", headers=h)
    assert r.status_code == 201 and r.get_json()["filled_quantity"] == 240
    r = client.post(URL, json=order_body(symbol="RELIANCE", side="SELL", quantity=10), headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "filled"


def test_the_kill_switch_lets_a_close_through(client, trader, market, app):
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=10)
    aid = _account_id(client, h)
    client.post(f"{P}/accounts/{aid}/kill-switch", json={"on": True, "reason": "tilt"}, headers=h)
    assert _refused(client, h, symbol="SBIN", quantity=1) == ["trading_state"]
    # selling more than is held is not a pure reduction: refused while halted
    assert "trading_state" in _refused(client, h, symbol="SBIN", side="SELL", product="I", quantity=11)
    r = client.post(f"{P}/positions/SBIN/close", headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "filled"
    assert _positions(client, h) == {}


# --------------------------------------------------------------------------- finding 3


def test_two_resting_sells_of_the_same_held_shares(client, trader, market, app):
    """10 SBIN held in D; a resting SELL 10 reserves them; a second SELL 10 is a delivery short."""
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=10)
    first = _place(client, h, symbol="SBIN", side="SELL", type="LIMIT", price="820.00", quantity=10)
    assert first["status"] == "open"
    r = client.post(
        URL, json=order_body(symbol="SBIN", side="SELL", type="LIMIT", price="830.00", quantity=10), headers=h
    )
    assert r.status_code == 422
    check = r.get_json()["error"]["details"]["checks"][0]
    assert check["name"] == "short_selling" and "reserved" in check["reason"] and check["actual"] == "-10"
    # both would have filled to -10 in D; now the market rises through both prices: one fill only
    _tick(app, market, "SBIN", "835")
    assert _positions(client, h) == {}
    assert client.get(f"{URL}/{first['id']}", headers=h).get_json()["status"] == "filled"


def test_closing_a_position_cancels_its_working_take_profit(client, trader, market, app):
    """Intraday long 10 with a take-profit and a stop order resting (the second SELL of the same 10
    counts as a short, allowed intraday); closing cancels both, so neither can open a short later."""
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=10, product="I")
    tp = _place(client, h, symbol="SBIN", side="SELL", type="LIMIT", price="820.00", quantity=10, product="I")
    sl = _place(
        client, h, symbol="SBIN", side="SELL", type="SL-M", trigger_price="780.00", quantity=10, product="I"
    )
    # a short of the reserved 10: 100% margin on 10 x 780 x (1 - 2% collar) = 7644.00, plus intraday
    # sell charges: brokerage 7.64, STT 1.91, txn 0.23, SEBI 0.01, IPFT 0.01, GST 18% x 7.89 = 1.42 -> 11.22
    assert D(sl["reserved_cash"]) == D("7655.22")
    r = client.post(f"{P}/positions/SBIN/close", headers=h)
    assert r.status_code == 201 and r.get_json()["filled_quantity"] == 10
    assert client.get(f"{URL}/{tp['id']}", headers=h).get_json()["status"] == "cancelled"
    assert client.get(f"{URL}/{sl['id']}", headers=h).get_json()["status"] == "cancelled"
    # the cancelled orders cannot open a short when the price gets there
    _tick(app, market, "SBIN", "825")
    _tick(app, market, "SBIN", "775")
    assert _positions(client, h) == {}
    summary = client.get(P, headers=h).get_json()
    assert D(summary["available_cash"]) == D(summary["cash"])  # nothing left reserved


def test_three_resting_buys_against_a_100_share_limit(client, trader, market, app):
    _, h = trader
    _tighten(client, h, max_position_qty=100)
    first = _place(client, h, symbol="SBIN", type="LIMIT", price="790.00", quantity=100)
    assert first["status"] == "open"
    for price in ("789.00", "788.00"):
        r = client.post(
            URL, json=order_body(symbol="SBIN", type="LIMIT", price=price, quantity=100), headers=h
        )
        assert r.status_code == 422
        check = r.get_json()["error"]["details"]["checks"][0]
        assert check["name"] == "max_position" and check["actual"] == "200"
    _tick(app, market, "SBIN", "785")  # the one resting BUY fills: 100, never 300
    assert _positions(client, h) == {("SBIN", "D"): 100}
    check_invariants(app, first["account_id"])


# --------------------------------------------------------------------------- finding 4


def test_intraday_and_delivery_are_separate_positions(client, trader, market, app):
    """100 SBIN held as delivery. A SELL 100 with product I is an intraday short: the holding stays
    and intraday charges apply. Closing the holding sells as D with delivery STT."""
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=100)
    intraday = _place(client, h, symbol="SBIN", side="SELL", product="I", quantity=100)
    assert D(intraday["average_price"]) == D("799.55")
    assert _positions(client, h) == {("SBIN", "D"): 100, ("SBIN", "I"): -100}
    assert [(x["symbol"], x["quantity"]) for x in client.get(f"{P}/holdings", headers=h).get_json()] == [
        ("SBIN", 100)
    ]
    # turnover 100 x 799.55 = 79955.00; intraday: brokerage 20 (0.1% capped), STT 0.025% 19.99,
    # txn 2.37, SEBI 0.08, IPFT 0.0001% 0.08, GST 18% x 22.53 = 4.06 -> 46.58
    trades = client.get(f"{URL}/{intraday['id']}/trades", headers=h).get_json()
    assert D(trades[0]["charges"]) == D("46.58")

    both = client.post(f"{P}/positions/SBIN/close", headers=h)
    assert both.status_code == 422 and "product" in both.get_json()["error"]["details"]["fields"]
    sold = client.post(f"{P}/positions/SBIN/close", query_string={"product": "D"}, headers=h)
    assert sold.status_code == 201 and sold.get_json()["product"] == "D"
    # delivery: brokerage 20, STT 0.1% 79.96, txn 2.37, SEBI 0.08, IPFT 0.08, DP 18.50 (one scrip,
    # one delivery-sell day), GST 18% x (20 + 2.37 + 0.08 + 0.08 + 18.50) = 7.39 -> 128.38
    trades = client.get(f"{URL}/{sold.get_json()['id']}/trades", headers=h).get_json()
    assert D(trades[0]["charges"]) == D("128.38")
    assert _positions(client, h) == {("SBIN", "I"): -100}
    assert client.get(f"{P}/holdings", headers=h).get_json() == []
    check_invariants(app, sold.get_json()["account_id"])


def test_the_intraday_square_off(client, trader, market, app, events):
    """Warned at 15:05, squared off at 15:15 (EQ): intraday positions closed with MARKET orders
    tagged square_off, working intraday orders cancelled, the delivery holding untouched."""
    from datetime import datetime

    from backend.domain.market.calendar import IST
    from backend.services.scheduler import SquareOffScheduler

    user_id, h = trader
    _place(client, h, symbol="SBIN", quantity=100)  # delivery holding: stays
    _place(client, h, symbol="SBIN", quantity=50, product="I")
    _place(client, h, symbol="RELIANCE", side="SELL", quantity=20, product="I")  # intraday short
    tp = _place(client, h, symbol="SBIN", side="SELL", type="LIMIT", price="820.00", quantity=50, product="I")
    entry = _place(client, h, symbol="INFY", type="LIMIT", price="1450.00", quantity=5, product="I")
    delivery_order = _place(client, h, symbol="INFY", type="LIMIT", price="1450.00", quantity=5)

    sched = SquareOffScheduler(app)
    day = (2026, 12, 1)  # a Tuesday, not an NSE holiday
    assert sched.tick(datetime(*day, 14, 59, tzinfo=IST)) == []
    assert sched.tick(datetime(*day, 15, 5, tzinfo=IST)) == [("warn", "EQ")]
    warned = [p for u, e, p in events if e == "square_off_warning" and u == user_id]
    assert len(warned) == 1 and warned[0]["at"].endswith("15:15:00+05:30")
    assert {(p["symbol"], p["quantity"]) for p in warned[0]["positions"]} == {("SBIN", 50), ("RELIANCE", -20)}
    assert sched.tick(datetime(*day, 15, 6, tzinfo=IST)) == []  # once per day
    assert _positions(client, h)[("SBIN", "I")] == 50

    # 15:15: EQ is squared off; F&O (15:20) is warned, with nothing to warn about here
    assert sched.tick(datetime(*day, 15, 15, tzinfo=IST)) == [("square_off", "EQ"), ("warn", "FO")]
    assert _positions(client, h) == {("SBIN", "D"): 100}
    done = [p for u, e, p in events if e == "square_off_done"]
    assert len(done) == 1 and done[0]["failed"] == []
    assert sorted((o["symbol"], o["quantity"], o["status"]) for o in done[0]["orders"]) == [
        ("RELIANCE", -20, "filled"),
        ("SBIN", 50, "filled"),
    ]
    tagged = client.get(URL, query_string={"status": "filled"}, headers=h).get_json()["items"]
    assert sum(o["tag"] == "square_off" for o in tagged) == 2
    assert client.get(f"{URL}/{tp['id']}", headers=h).get_json()["status"] == "cancelled"
    assert client.get(f"{URL}/{entry['id']}", headers=h).get_json()["status"] == "cancelled"
    assert client.get(f"{URL}/{delivery_order['id']}", headers=h).get_json()["status"] == "open"
    check_invariants(app, tp["account_id"])


def test_session_close_squares_off_what_is_still_intraday(client, trader, market, app):
    """An intraday position opened after the square-off time does not survive the session."""
    _, h = trader
    _place(client, h, symbol="SBIN", quantity=10, product="I")
    result = app.test_cli_runner().invoke(args=["session", "close", "--day", "2026-12-01"])
    assert result.exit_code == 0, result.output
    assert "square_off_intraday: {'accounts': 1, 'positions': 1, 'orders': 1" in result.output
    assert _positions(client, h) == {}


# --------------------------------------------------------------------------- finding 10


def test_a_basket_exit_is_one_trade_for_the_breaker(client, trader, market, app):
    from backend.extensions import db
    from backend.models import User
    from backend.services.trading import orders

    user_id, h = trader
    _tighten(client, h, max_consecutive_losses=2)
    _place(client, h, symbol="SBIN", quantity=10)
    _place(client, h, symbol="RELIANCE", quantity=10)
    market.set("SBIN", "780")
    market.set("RELIANCE", "980")
    with app.app_context():
        legs = [
            {"symbol": "SBIN", "side": "SELL", "type": "MARKET", "quantity": 10},
            {"symbol": "RELIANCE", "side": "SELL", "type": "MARKET", "quantity": 10},
        ]
        rows = orders.place_basket(db.session.get(User, user_id), legs)
        assert [r.status for r in rows] == ["filled", "filled"]
    risk = client.get(f"{P}/accounts/{_account_id(client, h)}/risk", headers=h).get_json()
    # two losing legs, one losing trade: 1 of 2 consecutive losses, still ACTIVE
    assert risk["breaker"]["consecutive_losses"] == 1 and risk["trading_state"] == "ACTIVE"


def test_paper_broker_positions_and_holdings(client, trader, market, app):
    from backend.services.trading.paper_broker import PaperBroker

    _, h = trader
    _place(client, h, symbol="SBIN", quantity=10)
    _place(client, h, symbol="SBIN", quantity=4, product="I")
    aid = _account_id(client, h)
    with app.app_context():
        broker = PaperBroker()
        got = {(p.symbol, str(p.product)): (p.quantity, p.average_price) for p in broker.positions(str(aid))}
        assert got == {("SBIN", "D"): (10, D("800.5000")), ("SBIN", "I"): (4, D("800.5000"))}
        assert [(x.symbol, x.quantity) for x in broker.holdings(str(aid))] == [("SBIN", 10)]


def _trips(events) -> list[dict]:
    return [p for _, ev, p in events if ev == "breaker_tripped"]


def test_the_daily_loss_trip_tells_the_trader_and_is_audited(client, trader, market, app, events):
    """The trade that trips HALTED sends one ``breaker_tripped`` event after its commit, with the day's
    P&L, and leaves an audit row; a winning trade before it sent none."""
    from backend.extensions import db
    from backend.models.audit import AuditLog

    user_id, h = trader
    _tighten(client, h, daily_loss_limit="5000")
    _place(client, h, symbol="SBIN", quantity=10)
    market.set("SBIN", "820")
    won = client.post(f"{P}/positions/SBIN/close", headers=h)
    assert won.status_code == 201
    assert _trips(events) == []  # a win trips nothing

    _place(client, h, symbol="RELIANCE", quantity=100)
    market.set("RELIANCE", "950")
    r = client.post(f"{P}/positions/RELIANCE/close", headers=h)
    assert r.status_code == 201
    acct = _account_id(client, h)
    trades = client.get(f"{P}/trades", headers=h).get_json()
    trades = trades["items"] if isinstance(trades, dict) else trades
    pnl = sum(D(t["realised_pnl"]) - D(t["charges"]) for t in trades if t["side"] == "SELL")
    # the SBIN win and the RELIANCE loss of 100 x (949.45 - 1000.60) = -5,115 before the sale's charges
    loss = next(t for t in trades if t["symbol"] == "RELIANCE" and t["side"] == "SELL")
    assert D(loss["realised_pnl"]) == D("-5115")
    (trip,) = _trips(events)
    assert trip["account_id"] == acct and trip["state"] == "HALTED"
    assert D(trip["day_realised_pnl"]) == pnl and pnl <= D("-5000")
    assert trip["reason"] == f"daily loss {-pnl} reached limit 5000"
    risk = client.get(f"{P}/accounts/{acct}/risk", headers=h).get_json()
    assert risk["trading_state"] == "HALTED"
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "trading.breaker_tripped")).all()
        assert [(r.actor_id, r.details["state"], r.details["day_realised_pnl"]) for r in rows] == [
            (user_id, "HALTED", str(pnl))
        ]
    # new risk is refused while HALTED, and the refusal starts no second trip
    assert "trading_state" in _refused(client, h, symbol="INFY", quantity=1)
    assert len(_trips(events)) == 1


def test_consecutive_losses_trip_reducing_once(client, trader, market, app, events):
    """Two losing trades against max_consecutive_losses 2: the second trips REDUCING, one event."""
    _, h = trader
    _trip_reducing(client, h, market)
    (trip,) = _trips(events)
    assert trip["state"] == "REDUCING" and trip["reason"] == "2 consecutive losing trades"
    assert trip["consecutive_losses"] == 2


def _trip_reducing(client, h, market) -> int:
    """Two losing SBIN trades against max_consecutive_losses 2: the account is REDUCING."""
    _tighten(client, h, max_consecutive_losses=2)
    for _ in range(2):
        _place(client, h, symbol="SBIN", quantity=10)
        market.set("SBIN", "780")
        assert client.post(f"{P}/positions/SBIN/close", headers=h).status_code == 201
        market.set("SBIN", "800")
    acct = _account_id(client, h)
    assert client.get(f"{P}/accounts/{acct}/risk", headers=h).get_json()["trading_state"] == "REDUCING"
    return acct


def test_the_admin_reset_tells_the_trader_and_trading_resumes(client, trader, admin, market, app, events):
    """REDUCING after two losses in a row; an admin's reset sends the trader one ``breaker_reset``
    event (was REDUCING, now ACTIVE), is audited with what it cleared, and a new BUY fills again."""
    from backend.extensions import db
    from backend.models.audit import AuditLog

    _, h = trader
    acct = _trip_reducing(client, h, market)
    assert "trading_state" in _refused(client, h, symbol="INFY", quantity=1)
    assert [ev for _, ev, _ in events if ev == "breaker_reset"] == []

    r = client.post(f"/api/v1/admin/risk/accounts/{acct}/reset-breaker", headers=admin[1])
    assert r.status_code == 200
    (reset,) = [(uid, p) for uid, ev, p in events if ev == "breaker_reset"]
    assert reset[0] == trader[0]
    assert reset[1]["account_id"] == acct and reset[1]["by"] == "admin"
    assert (reset[1]["was"], reset[1]["state"]) == ("REDUCING", "ACTIVE")
    assert reset[1]["reason"] == "2 consecutive losing trades"
    with app.app_context():
        (row,) = db.session.scalars(select(AuditLog).where(AuditLog.action == "trading.breaker_reset")).all()
        assert row.actor_id == admin[0]
        assert row.details == {"was": "REDUCING", "reason": "2 consecutive losing trades"}
    assert client.get(f"{P}/accounts/{acct}/risk", headers=h).get_json()["trading_state"] == "ACTIVE"
    assert _place(client, h, symbol="INFY", quantity=1)["status"] == "filled"


def test_a_reset_under_a_kill_switch_says_the_account_is_still_halted(client, trader, admin, market, events):
    """The reset clears the automatic trip only: with the trader's own kill switch on, the event says
    the account is still HALTED."""
    _, h = trader
    acct = _trip_reducing(client, h, market)
    assert client.post(f"{P}/accounts/{acct}/kill-switch", json={"on": True}, headers=h).status_code == 200
    r = client.post(f"/api/v1/admin/risk/accounts/{acct}/reset-breaker", headers=admin[1])
    assert r.status_code == 200
    (reset,) = [p for _, ev, p in events if ev == "breaker_reset"]
    assert (reset["was"], reset["state"]) == ("REDUCING", "HALTED")
