"""A trader finds the NIFTY futures of the simulated market, buys one lot on paper and sells it:
the futures charge schedule to the paisa, and the F&O margin blocked on entry and released on exit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.services.trading_support import FakeMarket, check_invariants

D = Decimal
MD = "/api/v1/market-data"


class BookMarket(FakeMarket):
    """Prices set by hand with no spread, so a LIMIT at the price fills at exactly that price;
    ``closes`` are the daily closes (by symbol and day) its daily candles report."""

    def __init__(self, app) -> None:
        super().__init__(app)
        self.closes: dict[tuple[str, object], Decimal] = {}

    def candles(self, symbol, interval, start, end):
        from backend.domain.market.provider import daily_bar_ts
        from backend.domain.market.types import Candle

        out = []
        for (sym, day), close in sorted(self.closes.items()):
            ts = daily_bar_ts(day)
            if sym == symbol and interval == "1d" and start <= ts <= end:
                out.append(Candle(ts, close, close, close, close, 0))
        return out

    def quote(self, s):
        from backend.domain.market.types import Quote

        p = self.prices[s]
        return Quote(s, p, p, p, p, p, p, p, 1000, datetime.now(UTC))


@pytest.fixture
def futures_desk(app):
    """The simulated market's instruments (futures included) in the directory, then hand-set prices.
    The shipped risk limits: one NIFTY lot (about 17.5 lakh notional) is above the cash-equity
    ``max_order_value`` (10 lakh) and within ``fno_max_order_value`` (50 lakh)."""
    from backend.services import market_data
    from backend.services.cache import get_cache

    with app.app_context():
        market_data.set_provider(None, app)
        market_data.provider()  # the simulated provider lists its futures into the directory
        market = BookMarket(app)
        market_data.set_provider(market, app)
    yield market
    with app.app_context():
        market_data.set_provider(None, app)
        get_cache(app).flush("quote")
        get_cache(app).flush("ltp")


def _near_nifty_future(app, desk) -> str:
    """The nearest unexpired NIFTY future, priced at 27,000 with the index at 26,950."""
    from backend.services import market_data

    with app.app_context():
        rows = market_data.search_instruments("NIFTY FUT", "FUT", 10, None).items
        today = datetime.now(UTC).date()
        fut = min((r for r in rows if r.expiry >= today), key=lambda r: r.expiry).trading_symbol
    desk.set("NIFTY", "26950")
    desk.set(fut, "27000")
    return fut


def _summary(client, h) -> dict:
    return client.get("/api/v1/portfolio", headers=h).get_json()


def _order(client, h, **body) -> dict:
    body = {"type": "LIMIT", "product": "D", **body}
    r = client.post("/api/v1/orders", json=body, headers=h)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_futures_are_listed_with_lot_freeze_and_type(app, client, trader, futures_desk):
    _, h = trader
    for q, lot, freeze in (("NIFTY FUT", 65, 1800), ("BANKNIFTY FUT", 30, 600)):
        r = client.get(f"{MD}/instruments", query_string={"q": q, "type": "FUT"}, headers=h)
        assert r.status_code == 200, r.get_json()
        items = [i for i in r.get_json()["items"] if i["expiry"] >= datetime.now(UTC).date().isoformat()]
        assert len(items) >= 3
        near = sorted(items, key=lambda i: i["expiry"])[:3]
        assert {(i["instrument_type"], i["segment"], i["lot_size"], i["freeze_quantity"]) for i in near} == {
            ("FUT", "NSE_FO", lot, freeze)
        }
        assert all(i["underlying"] == q.split()[0] and i["strike"] is None for i in near)
    # and the type filter alone finds them among every instrument
    r = client.get(f"{MD}/instruments", query_string={"type": "FUT", "limit": 100}, headers=h)
    assert {i["instrument_type"] for i in r.get_json()["items"]} == {"FUT"}


def test_buy_and_sell_a_nifty_future_charges_to_the_paisa_and_margin(app, client, trader, futures_desk):
    _, h = trader
    fut = _near_nifty_future(app, futures_desk)
    start = D(_summary(client, h)["cash"])

    buy = _order(client, h, symbol=fut, side="BUY", quantity=65, price="27000")
    assert (buy["status"], D(buy["average_price"])) == ("filled", D("27000"))
    (t,) = client.get(f"/api/v1/orders/{buy['id']}/trades", headers=h).get_json()
    # By hand, futures schedule from 1 Apr 2026, BUY 65 x 27,000 = 17,55,000 turnover:
    #   brokerage  min(0.05% = 877.50, 20)              = 20.00
    #   STT        0 on the buy side                    =  0.00
    #   NSE txn    0.00173% x 17,55,000 = 30.3615       = 30.36
    #   SEBI       Rs 10 / crore = 1.755                =  1.76
    #   IPFT       Rs 10 / crore = 1.755                =  1.76
    #   GST        18% x (20 + 30.36 + 1.76 + 1.76)     =  9.70 (9.6984)
    #   stamp      0.002% x 17,55,000                   = 35.10
    #   total                                           = 98.68  (the options schedule would charge far more)
    assert D(t["charges"]) == D("98.68")
    # Margin, both sides of a future: scan 9.3% of 17,55,000 = 1,63,215 + exposure 2% = 35,100
    s = _summary(client, h)
    assert D(s["margin_used"]) == D("198315.00")
    assert D(s["cash"]) == start - D("1755000") - D("98.68")  # the traded value is booked ...
    assert D(s["available_cash"]) == start - D("98.68") - D("198315.00")  # ... only the margin is spent

    futures_desk.set(fut, "27100")
    sell = _order(client, h, symbol=fut, side="SELL", quantity=65, price="27100")
    assert (sell["status"], D(sell["margin"])) == ("filled", 0)  # a pure reduction needs no margin
    (t,) = client.get(f"/api/v1/orders/{sell['id']}/trades", headers=h).get_json()
    # By hand, SELL 65 x 27,100 = 17,61,500:
    #   brokerage 20.00; STT 0.05% = 880.75; NSE txn 0.00173% = 30.47395 -> 30.47;
    #   SEBI 1.7615 -> 1.76; IPFT 1.76; GST 18% x (20 + 30.47 + 1.76 + 1.76) = 9.7182 -> 9.72;
    #   stamp 0 (buy side only); total 944.46
    assert D(t["charges"]) == D("944.46")
    assert D(t["realised_pnl"]) == D("6500")  # 65 x 100
    s = _summary(client, h)
    assert D(s["margin_used"]) == 0  # released on exit
    assert D(s["cash"]) == start + D("6500") - D("98.68") - D("944.46")
    assert D(s["available_cash"]) == D(s["cash"])
    check_invariants(app, buy["account_id"])


def test_simulated_futures_are_quoted_above_the_index_and_found_by_the_chart_search(app, client, trader):
    """On the simulated market itself: contango (spot plus carry), a book, and the UDF search."""
    from backend.services import market_data
    from backend.services.cache import get_cache

    _, h = trader
    with app.app_context():
        market_data.set_provider(None, app)
        get_cache(app).flush("quote")
        today = datetime.now(UTC).date()
        rows = market_data.search_instruments("NIFTY FUT", "FUT", 10, None).items
        near, nxt = sorted((r for r in rows if r.expiry >= today), key=lambda r: r.expiry)[:2]
    symbols = f"NIFTY,{near.trading_symbol},{nxt.trading_symbol}"
    r = client.get(f"{MD}/quotes", query_string={"symbols": symbols}, headers=h)
    assert r.status_code == 200, r.get_json()
    q = {x["symbol"]: x for x in r.get_json()["items"]}
    spot, f1, f2 = (D(q[s]["ltp"]) for s in ("NIFTY", near.trading_symbol, nxt.trading_symbol))
    assert spot < f1 < f2  # the further the expiry, the larger the carry
    assert f1 - spot < spot * D("0.0525") * 40 / 365  # never more than 40 days of carry at 5.25%
    assert D(q[near.trading_symbol]["bid"]) < f1 < D(q[near.trading_symbol]["ask"])
    # the chart draws a future from the index's bars at their carry
    r = client.get(f"{MD}/candles/{near.trading_symbol}", query_string={"interval": "1d"}, headers=h)
    assert r.status_code == 200, r.get_json()
    bars = r.get_json()["candles"]
    index = client.get(f"{MD}/candles/NIFTY", query_string={"interval": "1d"}, headers=h).get_json()[
        "candles"
    ]
    assert bars and len(bars) == len(index)
    assert all(D(f["close"]) > D(i["close"]) for f, i in zip(bars, index, strict=True))
    r = client.get(f"{MD}/udf/search", query_string={"query": "BANKNIFTY FUT", "type": "futures"}, headers=h)
    assert r.status_code == 200
    found = r.get_json()
    assert found and {x["type"] for x in found} == {"futures"}


def test_shipped_limits_take_a_nifty_lot_and_refuse_four_naming_the_fno_limit(
    app, client, trader, futures_desk
):
    """A trader on the shipped config: one NIFTY lot (65 x 27,000 = 17.55 lakh, above the cash-equity
    max_order_value of 10 lakh) fills; four lots (70.2 lakh) are refused by fno_max_order_value
    (50 lakh) with a 422 that names it, and nothing is booked."""
    _, h = trader
    fut = _near_nifty_future(app, futures_desk)
    assert _order(client, h, symbol=fut, side="BUY", quantity=65, price="27000")["status"] == "filled"
    before = _summary(client, h)
    body = {"symbol": fut, "side": "BUY", "type": "LIMIT", "product": "D", "quantity": 260, "price": "27000"}
    r = client.post("/api/v1/orders", json=body, headers=h)
    assert r.status_code == 422, r.get_json()
    checks = r.get_json()["error"]["details"]["checks"]
    (value,) = [c for c in checks if c["name"] == "max_order_value"]
    assert (value["limit"], value["actual"]) == ("5000000", "7020000")
    assert "fno_max_order_value" in value["reason"]
    after = _summary(client, h)
    assert (after["cash"], after["margin_used"]) == (before["cash"], before["margin_used"])
