"""Atomic baskets: ``orders.place_basket`` and ``POST /strategies/options/{name}/place`` on the real
paper broker. One account lock, one risk decision for the combined effect, all legs or none."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import func, select

from backend.domain.errors import RiskRejected, ValidationFailed
from tests.services import trading_support
from tests.services.trading_support import check_invariants

D = Decimal
market = trading_support.market  # shared fixture: RELIANCE 1000, SBIN 800, INFY 1500
events = trading_support.events  # shared fixture


def _account(client, headers, cash: str) -> int:
    r = client.post(
        "/api/v1/portfolio/accounts", json={"name": f"b{cash}", "starting_cash": cash}, headers=headers
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _basket(app, uid: int, legs: list[dict], **kw):
    from backend.extensions import db
    from backend.models.user import User
    from backend.services.trading import orders

    with app.app_context():
        try:
            rows = orders.place_basket(db.session.get(User, uid), legs, **kw)
            return [
                {
                    k: getattr(r, k)
                    for k in ("id", "status", "filled_quantity", "average_price", "tag", "strategy_id")
                }
                for r in rows
            ]
        finally:
            db.session.remove()


def _counts(app, account_id: int) -> dict[str, int]:
    from backend.extensions import db
    from backend.models.trading import LedgerEntry, Order, Position, Trade

    with app.app_context():
        out = {
            m.__tablename__: db.session.scalar(
                select(func.count()).select_from(m).where(m.account_id == account_id)
            )
            for m in (Order, Trade, LedgerEntry, Position)
        }
        db.session.remove()
    return out


def _cash(client, headers, account_id: int) -> Decimal:
    accts = client.get("/api/v1/portfolio/accounts", headers=headers).get_json()
    return D(next(a for a in accts if a["id"] == account_id)["cash"])


def test_accepted_basket_fills_every_leg_in_one_consistent_state(app, client, trader, market, events):
    uid, h = trader
    aid = _account(client, h, "100000")
    legs = [
        {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 10, "strategy_id": "s1"},
        {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 5},
        {"symbol": "INFY", "side": "BUY", "type": "LIMIT", "price": "1490.00", "quantity": 2},  # rests
    ]
    placed = _basket(app, uid, legs, account_id=aid, tag="combo")
    assert [(o["status"], o["filled_quantity"]) for o in placed] == [
        ("filled", 10),
        ("filled", 5),
        ("open", 0),
    ]
    # MARKET BUY: ask (ltp + 0.05) * (1 + 5 bps), rounded up to the 0.05 tick
    assert [o["average_price"] for o in placed[:2]] == [D("1000.60"), D("800.50")]
    assert {o["tag"] for o in placed} == {"combo"} and placed[0]["strategy_id"] == "s1"

    from backend.extensions import db
    from backend.models.trading import Order, Trade, TradingAccount

    with app.app_context():
        trades = list(db.session.scalars(select(Trade).where(Trade.account_id == aid).order_by(Trade.id)))
        assert [(t.symbol, t.quantity, D(t.price)) for t in trades] == [
            ("RELIANCE", 10, D("1000.60")),
            ("SBIN", 5, D("800.50")),
        ]
        assert D(trades[0].charges) == D("35.49")  # same reference as the single-order test
        acct = db.session.get(TradingAccount, aid)
        spent = sum((t.quantity * D(t.price) + D(t.charges) for t in trades), D(0))
        assert D(acct.cash) == D("100000") - spent
        assert acct.breaker_state["orders_today"] == 3  # every leg counts as an order
        limit_leg = db.session.get(Order, placed[2]["id"])
        assert D(limit_leg.reserved_cash) > D("2980")  # 2 x 1490 plus charges held back
        db.session.remove()
    check_invariants(app, aid)
    # events go out after the one commit: one order update per leg, a fill per filled leg
    kinds = [ev for _, ev, _ in events]
    assert kinds.count("fill") == 2 and kinds.count("order_update") == 3


def test_combined_cash_need_over_buying_power_rejects_every_leg(app, client, trader, market):
    uid, h = trader
    aid = _account(client, h, "15000")
    a = {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 10}  # ~10,235 with collar
    b = {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 10}  # ~8,190
    c = {"symbol": "INFY", "side": "BUY", "type": "LIMIT", "price": "1300.00", "quantity": 1}  # 13% off ltp
    for leg in (a, b):  # each leg alone fits the account
        from backend.extensions import db
        from backend.models.user import User
        from backend.services.trading import orders

        with app.app_context():
            assert orders.preview_order(db.session.get(User, uid), {**leg, "account_id": aid})["allowed"]
            db.session.remove()
    before = _counts(app, aid)
    with pytest.raises(RiskRejected) as exc:
        _basket(app, uid, [a, b, c], account_id=aid)
    details = exc.value.details
    by_name = {ch["name"]: ch for ch in details["checks"]}
    assert set(by_name) == {"buying_power", "price_collar"}
    assert by_name["buying_power"]["scope"] == "basket" and by_name["buying_power"]["legs"] == [0, 1, 2]
    assert by_name["buying_power"]["limit"] == "15000.0000"
    assert by_name["price_collar"]["scope"] == "leg" and by_name["price_collar"]["legs"] == [2]
    assert len(details["order_ids"]) == 3
    after = _counts(app, aid)
    # only the three rejected records are stored: no trade, no ledger entry, no position
    assert after == {**before, "orders": before["orders"] + 3}
    assert _cash(client, h, aid) == D("15000")
    rows = client.get(f"/api/v1/orders?account_id={aid}", headers=h).get_json()["items"]
    assert sorted(r["status"] for r in rows) == ["rejected"] * 3
    # the same basket without the bad leg and with less SBIN fits
    ok = _basket(app, uid, [a, {**b, "quantity": 4}], account_id=aid)
    assert [o["status"] for o in ok] == ["filled", "filled"]
    check_invariants(app, aid)


def test_bad_leg_names_leg_and_field_and_stores_nothing(app, client, trader, market):
    uid, h = trader
    aid = _account(client, h, "100000")
    good = {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 1}
    before = _counts(app, aid)
    with pytest.raises(ValidationFailed) as exc:
        _basket(app, uid, [good, {**good, "quantity": 0}, {**good, "side": "HOLD"}], account_id=aid)
    legs = exc.value.details["fields"]["legs"]
    assert set(legs) == {1, 2} and "quantity" in legs[1] and "side" in legs[2]
    with pytest.raises(ValidationFailed) as exc:
        _basket(app, uid, [good, {**good, "symbol": "NOPE"}], account_id=aid)
    assert (
        set(exc.value.details["fields"]["legs"]) == {1} and "symbol" in exc.value.details["fields"]["legs"][1]
    )
    with pytest.raises(ValidationFailed) as exc:  # limit price off the 0.05 tick
        _basket(app, uid, [good, {**good, "type": "LIMIT", "price": "999.03"}], account_id=aid)
    assert "price" in exc.value.details["fields"]["legs"][1]
    with pytest.raises(ValidationFailed):
        _basket(app, uid, [], account_id=aid)
    assert _counts(app, aid) == before
    assert _cash(client, h, aid) == D("100000")


@pytest.fixture
def no_fo_charges(app, tmp_path):
    """config/trading.yaml with F&O allowed but its charge schedule removed."""
    with open(app.config["TRADING_CONFIG"], encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    cfg["charges"]["segments"].pop("FO", None)
    path = tmp_path / "trading.yaml"
    path.write_text(yaml.safe_dump(cfg))
    old = app.config["TRADING_CONFIG"]
    app.config["TRADING_CONFIG"] = str(path)
    for k in ("trading_config", "trading_coordinator"):
        app.extensions.pop(k, None)
    yield
    app.config["TRADING_CONFIG"] = old
    for k in ("trading_config", "trading_coordinator"):
        app.extensions.pop(k, None)


def test_leg_that_cannot_be_placed_rolls_the_whole_basket_back(app, client, trader, market, no_fo_charges):
    """F&O is allowed but the config has no F&O charge schedule: the risk check passes, the paper
    broker fails on the option leg after the equity leg already filled in the same transaction;
    the rollback leaves nothing at all."""
    uid, h = trader
    aid = _account(client, h, "100000")
    from backend.extensions import db
    from backend.models.market import Instrument
    from backend.models.trading import TradingAccount

    with app.app_context():
        opt = db.session.scalar(
            select(Instrument.trading_symbol).where(Instrument.segment == "NSE_FO").limit(1)
        )
        db.session.get(TradingAccount, aid).risk_overrides = {"allowed_segments": ["EQ", "FO"]}
        db.session.commit()
        db.session.remove()
    assert opt is not None, "the seeded instruments list F&O contracts"
    market.set(opt, "100")
    with app.app_context():
        lot = db.session.scalar(select(Instrument.lot_size).where(Instrument.trading_symbol == opt))
        db.session.remove()
    before = _counts(app, aid)
    legs = [
        {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 1},
        {"symbol": opt, "side": "BUY", "type": "MARKET", "quantity": int(lot)},
    ]
    with pytest.raises(ValidationFailed) as exc:
        _basket(app, uid, legs, account_id=aid)
    assert exc.value.details["leg"] == 1 and "no leg was" in exc.value.message
    assert _counts(app, aid) == before
    assert _cash(client, h, aid) == D("100000")
    check_invariants(app, aid)


def test_idempotency_key_covers_the_whole_basket(app, client, trader, market):
    uid, h = trader
    aid = _account(client, h, "100000")
    legs = [
        {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 2},
        {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 3},
    ]
    first = _basket(app, uid, legs, account_id=aid, idempotency_key="bk-1")
    again = _basket(app, uid, legs, account_id=aid, idempotency_key="bk-1")
    assert [o["id"] for o in again] == [o["id"] for o in first]
    assert _counts(app, aid)["trades"] == 2
    from backend.domain.errors import Conflict

    with pytest.raises(Conflict):
        _basket(app, uid, [{**legs[0], "quantity": 3}, legs[1]], account_id=aid, idempotency_key="bk-1")
    check_invariants(app, aid)


def test_concurrent_baskets_against_limited_cash_accept_at_most_one(app, client, trader, market):
    uid, h = trader
    legs = [
        {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "quantity": 7},  # ~7,160 with collar
        {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 5},  # ~4,100
    ]
    for round_ in range(3):
        aid = _account(client, h, "15000")  # one basket fits, two do not
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def run() -> None:
            barrier.wait()
            try:
                _basket(app, uid, legs, account_id=aid)
                outcomes.append("accepted")
            except RiskRejected:
                outcomes.append("rejected")

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["accepted", "rejected"], round_
        counts = _counts(app, aid)
        assert counts["trades"] == 2 and counts["orders"] == 4
        assert _cash(client, h, aid) >= 0
        check_invariants(app, aid)


# --------------------------------------------------------------------------- the options endpoint


class _Frozen:
    """The simulated provider with each symbol's first quote kept, so a test knows the fill quote."""

    def __init__(self, real) -> None:
        self.real = real
        self.seen: dict = {}

    def __getattr__(self, name):
        return getattr(self.real, name)

    def quotes(self, symbols):
        missing = [s for s in symbols if s not in self.seen]
        if missing:
            self.seen.update(self.real.quotes(missing))
        return {s: self.seen[s] for s in symbols if s in self.seen}


@pytest.fixture
def options_trading(app, tmp_path):
    """config/trading.yaml plus an F&O charge schedule and FO among the allowed segments."""
    from backend.services import market_data
    from backend.services.cache import get_cache

    with open(app.config["TRADING_CONFIG"], encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    cfg["charges"]["segments"]["FO"] = {
        "exchange_txn_pct": 0.03503,
        "sebi_fee_per_crore": 10,
        "products": {
            p: {"brokerage_mode": "flat", "brokerage_flat": 20, "stt_buy_pct": 0, "stt_sell_pct": 0.1,
                "stamp_buy_pct": 0.003}
            for p in ("D", "I")
        },
    }  # fmt: skip
    cfg["risk"]["allowed_segments"] = ["EQ", "FO"]
    path = tmp_path / "trading.yaml"
    path.write_text(yaml.safe_dump(cfg))
    old = app.config["TRADING_CONFIG"]
    app.config["TRADING_CONFIG"] = str(path)
    for k in ("trading_config", "trading_coordinator"):
        app.extensions.pop(k, None)
    with app.app_context():
        frozen = _Frozen(market_data.provider())
        market_data.set_provider(frozen, app)
        get_cache(app).flush("quote")
    yield frozen
    app.config["TRADING_CONFIG"] = old
    for k in ("trading_config", "trading_coordinator"):
        app.extensions.pop(k, None)
    market_data.set_provider(None, app)
    get_cache(app).flush("quote")
    get_cache(app).flush("ltp")


def _expiry(app) -> str:
    from backend.services import market_data

    with app.app_context():
        return market_data.expiries("NIFTY")[1].isoformat()  # [0] may expire today


def test_options_place_fills_every_leg_at_the_quote(app, client, trader, options_trading):
    from backend.domain.orders.fills import market_fill_price
    from backend.domain.orders.types import Side
    from backend.services.trading.common import trading_config

    uid, h = trader
    params = {"underlying": "NIFTY", "expiry": _expiry(app)}
    r = client.post("/api/v1/strategies/options/long_straddle/place", json={"params": params}, headers=h)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert len(body["order_ids"]) == 2
    got = [client.get(f"/api/v1/orders/{i}", headers=h).get_json() for i in body["order_ids"]]
    assert [o["status"] for o in got] == ["filled", "filled"]
    assert {o["tag"] for o in got} == {"options:long_straddle"}
    with app.app_context():
        fills = trading_config().fills
    for o in got:
        q = options_trading.seen[o["symbol"]]
        assert D(o["average_price"]) == market_fill_price(q, Side.BUY, fills, D("0.05"))
    check_invariants(app, got[0]["account_id"])


def test_options_place_refuses_the_basket_when_only_each_leg_fits(app, client, trader, options_trading):
    from datetime import date

    from backend.services import market_data, strategies

    uid, h = trader
    expiry = _expiry(app)
    params = {"underlying": "NIFTY", "expiry": expiry}
    with app.app_context():
        _, analysis, chain = strategies.analyze("long_straddle", params)
        legs = [
            (strategies._leg_symbol(chain.underlying, date.fromisoformat(expiry), leg), leg.quantity)
            for leg in analysis.legs
        ]
        ltp = {q.symbol: q.ltp for q in market_data.quotes([s for s, _ in legs])}
    # a MARKET BUY is priced at ltp + 2% (the market collar) plus charges (under 100 here): the cash
    # covers the dearer leg alone, not both legs together
    costs = sorted(ltp[s] * q * D("1.02") for s, q in legs)
    cash = (costs[-1] + D(100)).quantize(D(1))
    assert cash < costs[0] + costs[1]
    aid = _account(client, h, str(cash))
    r = client.post(
        "/api/v1/strategies/options/long_straddle/place",
        json={"params": params, "account_id": aid},
        headers=h,
    )
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "RISK_REJECTED"
    assert [c["name"] for c in err["details"]["checks"]] == ["buying_power"]
    assert err["details"]["checks"][0]["legs"] == [0, 1]
    orders_ = client.get(f"/api/v1/orders?account_id={aid}", headers=h).get_json()["items"]
    assert sorted(o["status"] for o in orders_) == ["rejected", "rejected"]
    assert _counts(app, aid)["trades"] == 0 and _cash(client, h, aid) == cash
