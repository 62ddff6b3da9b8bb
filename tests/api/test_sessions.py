"""A trader meets the market's sessions, AMO, DAY expiry and freeze limits (issue 13, findings 5-6).

Every test pins the market clock (``market_clock``) and turns the exchange's sessions on: the
suite's default ``MARKET_CLOCK=always_open`` is for the other tests, which trade at any hour.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from backend.domain.market.calendar import IST
from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

D = Decimal
market = trading_support.market  # shared fixture
URL = "/api/v1/orders"


def ist(*a) -> datetime:
    return datetime(*a, tzinfo=IST)


def _option(app, expiry_after=None):
    """A NIFTY option of the seeded series: (symbol, lot, freeze)."""
    from backend.extensions import db
    from backend.models.market import Instrument

    with app.app_context():
        row = db.session.scalars(
            select(Instrument)
            .where(Instrument.segment == "NSE_FO", Instrument.freeze_quantity.is_not(None))
            .order_by(Instrument.expiry.desc())
            .limit(1)
        ).one()
        return row.trading_symbol, row.lot_size, row.freeze_quantity


def _scheduler(app):
    from backend.services.scheduler import SessionScheduler

    return SessionScheduler(app)


def test_after_hours_market_order_is_refused_naming_the_next_open(client, trader, market, market_clock):
    _, h = trader
    market_clock(ist(2026, 12, 3, 20, 13))  # Thursday evening
    r = client.post(URL, json=order_body(), headers=h)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    msg = err["details"]["fields"]["type"][0]
    assert "outside the NSE_EQ session (after_close)" in msg and "Fri 04 Dec 2026 09:15 IST" in msg
    assert err["details"]["next_open"] == "2026-12-04T03:45:00+00:00"  # UTC in data
    assert client.get(URL, headers=h).get_json()["items"] == []  # nothing recorded

    # Christmas (Friday) is a holiday from the shipped 2026 file: the next open is Monday
    market_clock(ist(2026, 12, 25, 11, 0))
    err = client.post(URL, json=order_body(), headers=h).get_json()["error"]
    assert err["details"]["session"] == "holiday"
    assert err["details"]["next_open"] == "2026-12-28T03:45:00+00:00"


def test_limit_after_hours_needs_amo_then_waits_for_the_open(client, trader, market, market_clock, app):
    _, h = trader
    market_clock(ist(2026, 12, 3, 20, 13))
    body = order_body(type="LIMIT", price="1010.00", quantity=5)
    r = client.post(URL, json=body, headers=h)
    assert r.status_code == 422
    assert "send amo: true" in r.get_json()["error"]["details"]["fields"]["amo"][0]

    r = client.post(URL, json={**body, "amo": True}, headers=h)
    assert r.status_code == 201, r.get_json()
    o = r.get_json()
    assert o["amo"] is True and o["status"] == "pending" and o["filled_quantity"] == 0
    assert o["status_message"] == "amo: queued for the open at 2026-12-04 09:15 IST"
    assert D(o["reserved_cash"]) > D("5000")  # its cash is held like any working order's
    summary = client.get("/api/v1/portfolio", headers=h).get_json()
    assert D(summary["available_cash"]) == D(summary["cash"]) - D(o["reserved_cash"])

    # the evening feed does not fill it, although the limit is above the price
    from backend.services.trading import orders

    with app.app_context():
        assert orders.match_tick(market.as_tick("RELIANCE")) == 0
    assert client.get(f"{URL}/{o['id']}", headers=h).get_json()["status"] == "pending"

    # an MARKET AMO is refused: at the open it would fill at any price
    r = client.post(URL, json=order_body(amo=True), headers=h)
    assert r.status_code == 422 and "type" in r.get_json()["error"]["details"]["fields"]

    # before the open nothing is released; at 09:15 IST it goes live and fills at the opening quote
    sched = _scheduler(app)
    assert sched.run_due(ist(2026, 12, 4, 9, 14)) == []
    market.set("RELIANCE", "1002")
    ran = sched.run_due(ist(2026, 12, 4, 9, 15))
    assert ("release_amo", "NSE_EQ", ist(2026, 12, 4).date()) in ran
    got = client.get(f"{URL}/{o['id']}", headers=h).get_json()
    assert got["amo"] is False and got["status"] == "filled"
    assert D(got["average_price"]) <= D("1010.00")
    check_invariants(app, o["account_id"])


def test_amo_is_refused_while_the_session_is_open(client, trader, market, market_clock):
    _, h = trader
    market_clock(ist(2026, 12, 3, 11, 0))
    r = client.post(URL, json=order_body(type="LIMIT", price="990.00", amo=True), headers=h)
    assert r.status_code == 422
    assert "session is open until 15:30 IST" in r.get_json()["error"]["details"]["fields"]["amo"][0]


def test_queued_amo_can_be_cancelled(client, trader, market, market_clock):
    _, h = trader
    market_clock(ist(2026, 12, 5, 10, 0))  # Saturday
    o = client.post(URL, json=order_body(type="LIMIT", price="990.00", amo=True), headers=h).get_json()
    assert o["status_message"] == "amo: queued for the open at 2026-12-07 09:15 IST"
    r = client.delete(f"{URL}/{o['id']}", headers=h)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert D(r.get_json()["reserved_cash"]) == 0


def test_day_orders_expire_at_their_segment_close(client, trader, market, market_clock, app):
    _, h = trader
    symbol, lot, _freeze = _option(app)
    market.set(symbol, "100")
    market_clock(ist(2026, 12, 3, 11, 0))
    eq = client.post(URL, json=order_body(type="LIMIT", price="970.00"), headers=h).get_json()
    fo = client.post(
        URL, json=order_body(symbol=symbol, type="LIMIT", price="97.00", quantity=lot), headers=h
    ).get_json()
    assert eq.get("status") == "open" and fo.get("status") == "open", (eq, fo)

    sched = _scheduler(app)
    sched.run_due(ist(2026, 12, 3, 15, 30))  # the cash market closes; F&O trades until 15:40
    assert client.get(f"{URL}/{eq['id']}", headers=h).get_json()["status"] == "expired"
    assert client.get(f"{URL}/{fo['id']}", headers=h).get_json()["status"] == "open"
    sched.run_due(ist(2026, 12, 3, 15, 40))
    assert client.get(f"{URL}/{fo['id']}", headers=h).get_json()["status"] == "expired"


def test_market_clock_always_open_lets_a_paper_account_trade_in_the_evening(
    client, trader, market, market_clock
):
    _, h = trader
    market_clock(ist(2026, 12, 3, 20, 13), clock="always_open")
    r = client.post(URL, json=order_body(), headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "filled"


def test_always_open_never_applies_to_a_live_account(app):
    from backend.services import market_calendar

    with app.app_context():
        app.config["MARKET_CLOCK"] = "always_open"
        assert market_calendar.always_open("paper") is True
        assert market_calendar.always_open("live") is False
        app.config["MARKET_DATA_PROVIDER"] = "csv"
        try:
            assert market_calendar.always_open("paper") is False
        finally:
            app.config["MARKET_DATA_PROVIDER"] = "simulated"


def test_always_open_is_refused_with_a_real_market_provider():
    from config import ConfigError
    from config.settings_market import settings

    assert settings({"MARKET_CLOCK": "always_open"})["MARKET_CLOCK"] == "always_open"
    with pytest.raises(ConfigError, match="MARKET_CLOCK=always_open needs"):
        settings({"MARKET_CLOCK": "always_open", "MARKET_DATA_PROVIDER": "upstox"})
    with pytest.raises(ConfigError, match="MARKET_CLOCK must be one of"):
        settings({"MARKET_CLOCK": "sometimes"})


def test_order_above_the_freeze_quantity_is_refused_unless_sliced(client, trader, market, app):
    _, h = trader
    symbol, lot, freeze = _option(app)
    market.set(symbol, "10")
    per = freeze - freeze % lot  # whole lots per slice
    qty = (freeze // lot + 1) * lot * 2  # a little over two freeze quantities
    r = client.post(URL, json=order_body(symbol=symbol, quantity=qty), headers=h)
    assert r.status_code == 422
    assert r.get_json()["error"]["details"]["fields"] == {
        "quantity": [f"above the freeze quantity {freeze}; send slice: true to split"]
    }
    assert client.get(URL, headers=h).get_json()["items"] == []

    r = client.post(URL, json=order_body(symbol=symbol, quantity=qty, slice=True), headers=h)
    assert r.status_code == 201, r.get_json()
    parent = r.get_json()
    slices = parent["slices"]
    expected = [per] * (qty // per) + ([qty % per] if qty % per else [])
    assert [s["quantity"] for s in slices] == expected and sum(expected) == qty
    assert slices[0]["id"] == parent["id"] and parent["parent_id"] is None
    assert all(s["parent_id"] == parent["id"] for s in slices[1:])
    assert all(s["status"] == "filled" for s in slices)
    # each slice is its own executed order with its own trade and charges
    for s in slices:
        trades = client.get(f"{URL}/{s['id']}/trades", headers=h).get_json()
        assert len(trades) == 1 and trades[0]["quantity"] == s["quantity"] and D(trades[0]["charges"]) > 0
    check_invariants(app, parent["account_id"])


def test_more_than_25_slices_is_refused(client, trader, market, app):
    _, h = trader
    symbol, lot, freeze = _option(app)
    market.set(symbol, "1")
    per = freeze - freeze % lot
    r = client.post(URL, json=order_body(symbol=symbol, quantity=per * 25 + lot, slice=True), headers=h)
    assert r.status_code == 422
    assert r.get_json()["error"]["details"]["fields"]["quantity"] == [
        f"{per * 25 + lot} needs 26 slices of at most {per}; at most 25 per order"
    ]


def test_flask_calendar_load_adds_a_year_to_the_calendar(app, tmp_path):
    from backend.services import market_calendar

    path = tmp_path / "NSE-2027.yaml"
    path.write_text(
        'exchange: NSE\nyear: 2027\nstatus: published\nsource: "test circular"\n'
        'holidays:\n  - {date: "2027-03-22", name: Holi}\n  - {date: "2027-01-26", name: Republic Day}\n'
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["calendar", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "NSE 2027: 2 holidays loaded (published)" in result.output
    with app.app_context():
        cal = market_calendar.calendar()
        assert not cal.is_trading_day(ist(2027, 3, 22).date())
        assert cal.next_open(ist(2027, 3, 19, 16, 0)) == ist(2027, 3, 23, 9, 15)  # Fri -> (Mon holiday) Tue
    bad = tmp_path / "bad.yaml"
    bad.write_text('exchange: NSE\nyear: 2027\nholidays:\n  - {date: "2026-12-25"}\n')
    result = runner.invoke(args=["calendar", "load", str(bad)])
    assert result.exit_code != 0 and "holidays.0: 2026-12-25 is not in 2027" in result.output


def test_a_basket_after_hours_refuses_its_market_leg_and_stores_nothing(app, trader, market, market_clock):
    from backend.domain.errors import ValidationFailed
    from backend.extensions import db
    from backend.models.trading import Order
    from backend.models.user import User
    from backend.services.trading import orders

    uid, _ = trader
    market_clock(ist(2026, 12, 3, 20, 13))
    legs = [
        {"symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "price": "990.00", "quantity": 1, "amo": True},
        {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 1},
    ]
    with app.app_context():
        with pytest.raises(ValidationFailed) as exc:
            orders.place_basket(db.session.get(User, uid), legs)
        assert set(exc.value.details["fields"]["legs"]) == {1}
        assert "type" in exc.value.details["fields"]["legs"][1]
        assert exc.value.details["next_open"] == "2026-12-04T03:45:00+00:00"
        assert db.session.scalar(select(Order.id).limit(1)) is None
        db.session.remove()
