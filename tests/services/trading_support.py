"""Shared fixtures for the trading tests: a controllable market and helpers (not a test module)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.domain.market.provider import MarketDataProvider
from backend.domain.market.types import Quote, Tick

D = Decimal


class FakeMarket(MarketDataProvider):
    """Quotes we set by hand; counts provider calls (to prove batching)."""

    name = "fake"

    def __init__(self, app) -> None:
        self.app = app
        self.prices: dict[str, Decimal] = {}
        self.quote_calls: list[list[str]] = []

    def set(self, symbol: str, ltp: str | Decimal) -> None:
        from backend.services.cache import get_cache

        self.prices[symbol] = D(ltp)
        get_cache(self.app).flush("quote")
        get_cache(self.app).flush("ltp")

    def quote(self, s: str) -> Quote:
        p = self.prices[s]
        return Quote(s, p, p - D("0.05"), p + D("0.05"), p, p, p, p, 1000, datetime.now(UTC))

    def quotes(self, symbols):
        self.quote_calls.append(list(symbols))
        return {s: self.quote(s) for s in symbols if s in self.prices}

    def tick(self, symbols, now):
        return [self.as_tick(s) for s in symbols if s in self.prices]

    def as_tick(self, s: str) -> Tick:
        p = self.prices[s]
        return Tick(s, p, p - D("0.05"), p + D("0.05"), 1000, datetime.now(UTC))

    def candles(self, *a):
        raise NotImplementedError

    def option_chain(self, *a):
        raise NotImplementedError

    def expiries(self, *a):
        raise NotImplementedError


@pytest.fixture
def market(app):
    from backend.services import market_data
    from backend.services.cache import get_cache

    fake = FakeMarket(app)
    fake.set("RELIANCE", "1000")
    fake.set("SBIN", "800")
    fake.set("INFY", "1500")
    market_data.set_provider(fake, app)
    yield fake
    market_data.set_provider(None, app)
    get_cache(app).flush("quote")
    get_cache(app).flush("ltp")


@pytest.fixture
def events(app):
    """Record emitted events instead of sending them."""
    from backend.services.trading import common

    seen: list[tuple[int, str, dict]] = []
    original = common.set_emitter(app, lambda uid, ev, payload: seen.append((uid, ev, payload)))
    yield seen
    common.set_emitter(app, original)


def order_body(**kw) -> dict:
    body = {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "product": "D", "quantity": 10}
    body.update(kw)
    return body


def check_invariants(app, account_id: int) -> None:
    """cash == sum(ledger); each position (symbol and product) == net of its trades; realised P&L exact."""
    from sqlalchemy import select

    from backend.domain.accounting import position_from_trades
    from backend.extensions import db
    from backend.models.trading import Position, Trade, TradingAccount
    from backend.services.trading.accounts import ledger_sum

    with app.app_context():
        acct = db.session.get(TradingAccount, account_id)
        assert D(acct.cash) == ledger_sum(account_id)
        trades = list(
            db.session.scalars(select(Trade).where(Trade.account_id == account_id).order_by(Trade.id))
        )
        for pos in db.session.scalars(select(Position).where(Position.account_id == account_id)):
            mine = [t for t in trades if (t.symbol, t.product) == (pos.symbol, pos.product)]
            rebuilt = position_from_trades(
                [type("T", (), {"side": t.side, "quantity": t.quantity, "price": D(t.price)}) for t in mine]
            )
            assert rebuilt.qty == pos.quantity
            assert rebuilt.cost_basis == D(pos.cost_basis)
            assert rebuilt.realised_pnl == D(pos.realised_pnl)
        db.session.remove()
