"""A trader holds four NIFTY contracts into their monthly expiry: a long ITM call, a long OTM put, a
short ITM call and a long future. After the close `flask expiry settle --date` settles them at the
final settlement price, NIFTY's close (index derivatives are cash settled): cash, positions, ledger,
margin, events and audit rows checked against numbers by hand. A second run settles nothing."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest

from tests.api.test_futures import futures_desk  # noqa: F401 - fixture
from tests.services.trading_support import check_invariants, events  # noqa: F401 - fixture

D = Decimal


def _summary(client, h) -> dict:
    return client.get("/api/v1/portfolio", headers=h).get_json()


def _order(client, h, **body) -> dict:
    body = {"type": "LIMIT", "product": "D", "quantity": 65, **body}
    r = client.post("/api/v1/orders", json=body, headers=h)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "filled", r.get_json()
    return r.get_json()


def _contracts(app):
    """The near NIFTY future and the option strikes of the same (monthly) expiry."""
    from backend.domain.market.instruments import option_trading_symbol
    from backend.services import market_data

    with app.app_context():
        today = datetime.now(UTC).date()
        rows = market_data.search_instruments("NIFTY FUT", "FUT", 10, None).items
        fut = min((r for r in rows if r.expiry >= today), key=lambda r: r.expiry)
        expiry = fut.expiry
        strikes = sorted(
            {
                Decimal(r.strike)
                for r in market_data.search_instruments("NIFTY", "CE", 1000, None).items
                if r.expiry == expiry
            }
        )
        k = strikes[len(strikes) // 2]
        sym = {
            "call_itm": option_trading_symbol("NIFTY", expiry, k - 100, "CE"),
            "put_otm": option_trading_symbol("NIFTY", expiry, k - 100, "PE"),
            "short_call": option_trading_symbol("NIFTY", expiry, k, "CE"),
            "future": fut.trading_symbol,
        }
        assert all(market_data.find_instrument(s) for s in sym.values())
        return expiry, k, sym


def _settle(app, day):
    runner = app.test_cli_runner()
    return runner.invoke(args=["expiry", "settle", "--date", day.isoformat()])


def test_positions_held_into_expiry_settle_at_the_index_close_once(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    events,  # noqa: F811
    market_clock,
):
    from sqlalchemy import func, select

    from backend.domain.market.calendar import IST
    from backend.extensions import db
    from backend.models.audit import AuditLog
    from backend.models.trading import LedgerEntry, Order, Position

    uid, h = trader
    expiry, k, sym = _contracts(app)
    market = futures_desk
    market.set("NIFTY", str(k))
    prices = {"call_itm": "100", "put_otm": "20", "short_call": "80", "future": str(k + 20)}
    for name, price in prices.items():
        market.set(sym[name], price)
    _order(client, h, symbol=sym["call_itm"], side="BUY", price="100")
    _order(client, h, symbol=sym["put_otm"], side="BUY", price="20")
    short = _order(client, h, symbol=sym["short_call"], side="SELL", price="80")
    fut = _order(client, h, symbol=sym["future"], side="BUY", price=str(k + 20))
    assert D(short["margin"]) > 0 and D(fut["margin"]) > 0
    before = _summary(client, h)
    assert D(before["margin_used"]) == D(short["margin"]) + D(fut["margin"])
    aid = fut["account_id"]

    # Before the F&O close of expiry day nothing settles: the contracts still trade.
    market_clock(datetime.combine(expiry, time(15, 0), tzinfo=IST), clock="always_open")
    result = _settle(app, expiry)
    assert result.exit_code == 0, result.output
    assert "positions: 0" in result.output

    # After the close: NIFTY closed at K + 30, the final settlement price.
    final = k + 30
    market.closes[("NIFTY", expiry)] = final
    market_clock(datetime.combine(expiry, time(16, 0), tzinfo=IST), clock="always_open")
    events.clear()
    result = _settle(app, expiry)
    assert result.exit_code == 0, result.output
    assert "positions: 4" in result.output
    assert "exercised: 1" in result.output and "assigned: 1" in result.output
    assert "expired_worthless: 1" in result.output and "future_settled: 1" in result.output

    # By hand, 65 of each at S = K + 30:
    #   long  K-100 CE: intrinsic 130 x 65 = +8,450.00; exercise STT 0.15% = 12.675 -> 12.68
    #   long  K-100 PE: out of the money: 0, the premium (1,300) is lost
    #   short K CE:     assigned, intrinsic 30 x 65 = -1,950.00, no STT
    #   long  future:   settles at S: +65 x (K + 30)
    cash_flow = D("8450") - D("12.68") - D("1950") + 65 * final
    after = _summary(client, h)
    assert D(after["cash"]) == D(before["cash"]) + cash_flow
    assert D(after["margin_used"]) == 0  # the short call's and the future's margin released
    assert after["open_positions"] == 0
    assert client.get("/api/v1/portfolio/positions", headers=h).get_json() == []  # all closed
    with app.app_context():
        rows = db.session.scalars(select(Position).where(Position.account_id == aid)).all()
        realised = {p.symbol: D(p.realised_pnl) for p in rows}
        assert {p.quantity for p in rows} == {0}
    assert realised == {
        sym["call_itm"]: D("1950"),  # 8,450 - 6,500 paid (STT is a charge, not P&L)
        sym["put_otm"]: D("-1300"),
        sym["short_call"]: D("3250"),  # 5,200 received - 1,950 paid
        sym["future"]: D("650"),  # 65 x 10
    }

    with app.app_context():
        settled = list(db.session.scalars(select(Order).where(Order.tag == "expiry").order_by(Order.id)))
        assert {(o.symbol, o.side, o.quantity, D(o.average_price)) for o in settled} == {
            (sym["call_itm"], "SELL", 65, D("130")),
            (sym["put_otm"], "SELL", 65, D("0")),
            (sym["short_call"], "BUY", 65, D("30")),
            (sym["future"], "SELL", 65, D(final)),
        }
        ledger = {
            (e.order_id, e.kind): D(e.amount)
            for e in db.session.scalars(
                select(LedgerEntry).where(LedgerEntry.order_id.in_([o.id for o in settled]))
            )
        }
        by_symbol = {o.symbol: o.id for o in settled}
        assert ledger == {
            (by_symbol[sym["call_itm"]], "fill"): D("8450"),
            (by_symbol[sym["call_itm"]], "charge"): D("-12.68"),
            (by_symbol[sym["put_otm"]], "fill"): D("0"),
            (by_symbol[sym["short_call"]], "fill"): D("-1950"),
            (by_symbol[sym["future"]], "fill"): 65 * D(final),
        }
        audits = db.session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "trading.expiry_settled")
        )
        assert audits == 4
        ledger_rows = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    ((to, summary),) = [(u, p) for u, e, p in events if e == "expiry_settlement"]
    assert to == uid
    outcomes = {d["symbol"]: (d["outcome"], d["stt"]) for d in summary["positions"]}
    assert outcomes == {
        sym["call_itm"]: ("exercised", "12.68"),
        sym["put_otm"]: ("expired_worthless", "0.00"),
        sym["short_call"]: ("assigned", "0.00"),
        sym["future"]: ("future_settled", "0.00"),
    }
    assert {e for _, e, _ in events} >= {"order_update", "fill", "position_update"}
    # the breaker counts the four settlements as one trade: 1,950 - 1,300 + 3,250 + 650 - 12.68 STT
    breaker = client.get(f"/api/v1/portfolio/accounts/{aid}/risk", headers=h).get_json()["breaker"]
    assert (D(breaker["day_realised_pnl"]), breaker["consecutive_losses"]) == (D("4537.32"), 0)
    check_invariants(app, aid)

    # Idempotent: a second run settles nothing and books nothing.
    events.clear()
    result = _settle(app, expiry)
    assert result.exit_code == 0, result.output
    assert "positions: 0" in result.output
    assert D(_summary(client, h)["cash"]) == D(after["cash"])
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger_rows
    assert not [e for _, e, _ in events if e == "expiry_settlement"]


def test_settlement_without_a_final_price_fails_and_books_nothing(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    market_clock,
):
    from backend.domain.market.calendar import IST

    _, h = trader
    expiry, k, sym = _contracts(app)
    futures_desk.set("NIFTY", str(k))
    futures_desk.set(sym["future"], str(k))
    _order(client, h, symbol=sym["future"], side="BUY", price=str(k))
    cash = D(_summary(client, h)["cash"])
    market_clock(datetime.combine(expiry, time(16, 0), tzinfo=IST), clock="always_open")
    result = _settle(app, expiry)  # no close of NIFTY recorded for the expiry day
    assert result.exit_code == 1
    assert "NO_SETTLEMENT_PRICE" in result.output
    assert D(_summary(client, h)["cash"]) == cash
    assert _summary(client, h)["open_positions"] == 1
    # the operator may give the price by hand
    result = app.test_cli_runner().invoke(
        args=["expiry", "settle", "--date", expiry.isoformat(), "--price", f"NIFTY={k + 5}"]
    )
    assert result.exit_code == 0, result.output
    assert D(_summary(client, h)["cash"]) == cash + 65 * (k + 5)


def test_the_session_scheduler_settles_at_the_fo_close_of_expiry_day(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    market_clock,
):
    from backend.domain.market.calendar import IST
    from backend.services.scheduler import SessionScheduler

    _, h = trader
    expiry, k, sym = _contracts(app)
    futures_desk.set("NIFTY", str(k))
    futures_desk.set(sym["future"], str(k))
    _order(client, h, symbol=sym["future"], side="SELL", price=str(k))  # a short future
    cash = D(_summary(client, h)["cash"])
    futures_desk.closes[("NIFTY", expiry)] = k - 40
    sched = SessionScheduler(app)
    at = datetime.combine(expiry, time(15, 40), tzinfo=IST)  # the F&O close (15:40 from 3 Aug 2026)
    market_clock(at, clock="always_open")
    assert ("settle_expiry", "NSE_FO", expiry) in sched.run_due(at)
    # the short buys back at the final price: pays 65 x (K - 40) against the 65 x K it was booked at
    assert D(_summary(client, h)["cash"]) == cash - 65 * (k - 40)
    assert _summary(client, h)["open_positions"] == 0
    assert D(_summary(client, h)["margin_used"]) == 0


def test_an_expired_contract_cannot_be_traded(app, client, trader, futures_desk, market_clock):  # noqa: F811
    from backend.domain.market.calendar import IST

    _, h = trader
    expiry, k, sym = _contracts(app)
    futures_desk.set("NIFTY", str(k))
    futures_desk.set(sym["future"], str(k))
    market_clock(datetime.combine(expiry, time(15, 39), tzinfo=IST), clock="always_open")
    _order(client, h, symbol=sym["future"], side="BUY", price=str(k))  # the last minute of trading
    market_clock(datetime.combine(expiry, time(15, 40), tzinfo=IST), clock="always_open")
    r = client.post(
        "/api/v1/orders",
        json={"symbol": sym["future"], "side": "SELL", "type": "LIMIT", "product": "D", "quantity": 65,
              "price": str(k)},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 422
    assert f"expired on {expiry.isoformat()}" in r.get_json()["error"]["details"]["fields"]["symbol"][0]
    assert _summary(client, h)["open_positions"] == 1  # nothing changed: it waits for settlement


def test_a_stock_future_is_not_cash_settled(app, client, trader, futures_desk, market_clock):  # noqa: F811
    """Stock F&O settles by delivery of the shares, which the paper broker does not simulate: the
    position is left open rather than settled in cash at a made-up price."""
    from backend.domain.market.calendar import IST
    from backend.domain.market.instruments import Instrument
    from backend.services import market_data

    _, h = trader
    expiry, k, sym = _contracts(app)
    stock_future = f"RELIANCE FUT {expiry.strftime('%d %b %y').upper()}"
    with app.app_context():
        market_data.upsert_instruments(
            [
                Instrument(
                    "NSE_FO|TEST-RELIANCE-FUT", stock_future, "RELIANCE", "NSE", "NSE_FO", "FUT",
                    lot_size=1, expiry=expiry, underlying="RELIANCE",
                )
            ]
        )  # fmt: skip
    futures_desk.set("RELIANCE", "1400")
    futures_desk.set(stock_future, "1400")
    _order(client, h, symbol=stock_future, side="BUY", price="1400", quantity=10)
    futures_desk.closes[("RELIANCE", expiry)] = D("1410")
    market_clock(datetime.combine(expiry, time(16, 0), tzinfo=IST), clock="always_open")
    result = _settle(app, expiry)
    assert result.exit_code == 0, result.output
    assert "positions: 0" in result.output
    assert _summary(client, h)["open_positions"] == 1


@pytest.mark.parametrize("price", ["NIFTY=abc", "NIFTY=NaN", "NIFTY=-5", "=26000", "NIFTY"])
def test_settle_command_names_a_bad_price(app, price):
    result = app.test_cli_runner().invoke(args=["expiry", "settle", "--date", "2026-12-29", "--price", price])
    assert result.exit_code == 2
    assert "--price" in result.output and "UNDERLYING=PRICE" in result.output


# --------------------------------------------------------------------------- the circuit breaker
# A settlement is a closing trade like any other for the risk desk: its realised P&L net of exercise
# STT reaches the breaker through the traded exits' path (TradeTally), and an account's contracts of
# one expiry are ONE trade, as the legs of one basket exit are (docs/trading.md).


def _risk(client, h, account_id) -> dict:
    return client.get(f"/api/v1/portfolio/accounts/{account_id}/risk", headers=h).get_json()


def _tighten(client, h, account_id, **overrides) -> None:
    r = client.patch(
        f"/api/v1/portfolio/accounts/{account_id}/risk", json={"overrides": overrides}, headers=h
    )
    assert r.status_code == 200, r.get_json()


def _account(client, h) -> int:
    return client.get("/api/v1/portfolio/accounts", headers=h).get_json()[0]["id"]


def _after_the_close(app, market, market_clock, expiry, final) -> None:
    from backend.domain.market.calendar import IST

    market.closes[("NIFTY", expiry)] = final
    market_clock(datetime.combine(expiry, time(16, 0), tzinfo=IST), clock="always_open")
    result = _settle(app, expiry)
    assert result.exit_code == 0, result.output


def _losing_round_trip(client, h, market, symbol) -> None:
    """Buy 65 at 100, sell at 90: realised 65 x -10 = -650.00, less the sell's charges (premium
    5,850: brokerage 20; STT 0.15% = 8.775 -> 8.78; NSE 0.03503% = 2.049255 -> 2.05; SEBI 10/crore
    = 0.00585 -> 0.01; IPFT 50/crore = 0.02925 -> 0.03; GST 18% of 22.09 = 3.9762 -> 3.98): 34.85.
    The breaker counts -684.85, one losing trade."""
    market.set(symbol, "100")
    _order(client, h, symbol=symbol, side="BUY", price="100")
    market.set(symbol, "90")
    sold = _order(client, h, symbol=symbol, side="SELL", price="90")
    assert D(sold["estimated_charges"]) == D("34.85")


def test_options_expiring_worthless_are_one_losing_trade_for_the_breaker(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    market_clock,
):
    _, h = trader
    aid = _account(client, h)
    expiry, k, sym = _contracts(app)
    from backend.domain.market.instruments import option_trading_symbol

    call_otm = option_trading_symbol("NIFTY", expiry, k + 100, "CE")
    market = futures_desk
    market.set("NIFTY", str(k))
    _tighten(client, h, aid, max_consecutive_losses=3)
    _losing_round_trip(client, h, market, sym["call_itm"])
    breaker = _risk(client, h, aid)["breaker"]
    assert (breaker["consecutive_losses"], D(breaker["day_realised_pnl"])) == (1, D("-684.85"))

    # held into expiry: 65 K-100 PE at 20 (premium 1,300) and 65 K+100 CE at 15 (975)
    market.set(sym["put_otm"], "20")
    market.set(call_otm, "15")
    _order(client, h, symbol=sym["put_otm"], side="BUY", price="20")
    _order(client, h, symbol=call_otm, side="BUY", price="15")
    # NIFTY closes at K + 30: both out of the money, both expire worthless, no STT:
    # -1,300 - 975 = -2,275.00, one trade (the exchange closed both at once)
    _after_the_close(app, market, market_clock, expiry, k + 30)
    risk = _risk(client, h, aid)
    assert risk["breaker"]["consecutive_losses"] == 2  # 1 + one settlement trade, not 1 + 2 legs
    assert D(risk["breaker"]["day_realised_pnl"]) == D("-684.85") - D("2275")  # -2,959.85
    assert risk["trading_state"] == "ACTIVE"  # counted per leg it would be 3 of 3: REDUCING


def test_a_settlement_loss_past_the_daily_limit_halts_and_exits_still_pass(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    market_clock,
    events,  # noqa: F811
):
    from backend.services import market_data

    _, h = trader
    aid = _account(client, h)
    expiry, k, sym = _contracts(app)
    with app.app_context():
        rows = market_data.search_instruments("NIFTY FUT", "FUT", 10, None).items
        later = min((r for r in rows if r.expiry > expiry), key=lambda r: r.expiry).trading_symbol
    market = futures_desk
    market.set("NIFTY", str(k))
    market.set(sym["put_otm"], "20")
    market.set(later, str(k + 50))
    _tighten(client, h, aid, daily_loss_limit="1000")
    _order(client, h, symbol=sym["put_otm"], side="BUY", price="20")  # premium 1,300
    _order(client, h, symbol=later, side="BUY", price=str(k + 50))  # next month's future, not settled
    assert _risk(client, h, aid)["trading_state"] == "ACTIVE"

    # the put expires worthless: realised -1,300.00 >= the 1,000 limit: HALTED
    _after_the_close(app, market, market_clock, expiry, k + 30)
    risk = _risk(client, h, aid)
    assert risk["trading_state"] == "HALTED"
    assert D(risk["breaker"]["day_realised_pnl"]) == D("-1300")
    assert risk["breaker"]["consecutive_losses"] == 1
    assert risk["breaker"]["trip_reason"].startswith("daily loss 1300")
    # the trader is told, once, after the settlement's commit
    trips = [p for _, ev, p in events if ev == "breaker_tripped"]
    assert [(t["account_id"], t["state"], D(t["day_realised_pnl"])) for t in trips] == [
        (aid, "HALTED", D("-1300"))
    ]

    # new risk is refused ...
    r = client.post(
        "/api/v1/orders",
        json={"symbol": later, "side": "BUY", "type": "LIMIT", "product": "D", "quantity": 65,
              "price": str(k + 50)},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 422, r.get_json()
    assert {"trading_state", "daily_loss_limit"} <= {
        c["name"] for c in r.get_json()["error"]["details"]["checks"]
    }
    # ... and the exit of the future that is still open passes: 65 x (K + 60 - (K + 50)) = +650
    market.set(later, str(k + 60))
    sold = _order(client, h, symbol=later, side="SELL", price=str(k + 60))
    assert sold["status"] == "filled" and sold["filled_quantity"] == 65
    assert _summary(client, h)["open_positions"] == 0


def test_an_itm_settlement_profit_resets_the_consecutive_losses(
    app,
    client,
    trader,
    futures_desk,  # noqa: F811
    market_clock,
):
    _, h = trader
    aid = _account(client, h)
    expiry, k, sym = _contracts(app)
    market = futures_desk
    market.set("NIFTY", str(k))
    _losing_round_trip(client, h, market, sym["call_itm"])  # -684.85, 1 loss
    market.set(sym["call_itm"], "100")
    _order(client, h, symbol=sym["call_itm"], side="BUY", price="100")  # 65 K-100 CE, 6,500 paid
    assert _risk(client, h, aid)["breaker"]["consecutive_losses"] == 1

    # NIFTY closes at K + 30: exercised at intrinsic 130, 8,450 received - 6,500 = +1,950.00,
    # less exercise STT 0.15% of 8,450 = 12.675 -> 12.68: +1,937.32, a winning trade
    _after_the_close(app, market, market_clock, expiry, k + 30)
    breaker = _risk(client, h, aid)["breaker"]
    assert breaker["consecutive_losses"] == 0
    assert D(breaker["day_realised_pnl"]) == D("-684.85") + D("1937.32")  # 1,252.47
