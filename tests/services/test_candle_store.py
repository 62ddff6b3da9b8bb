"""The candle store: read-through, no second provider call, interrupted and incremental sync."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from backend.domain.errors import ServiceUnavailable
from backend.domain.market.provider import MarketDataProvider


class Recording(MarketDataProvider):
    """Wraps the real provider, records candle calls, optionally fails after N calls."""

    name = "recording"

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.calls, self.fail_after = inner, [], fail_after

    def candles(self, symbol, interval, start, end):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise ServiceUnavailable("provider down")
        self.calls.append((symbol, interval, start, end))
        return self.inner.candles(symbol, interval, start, end)

    def quotes(self, symbols):
        self.calls.append(("quotes", tuple(symbols)))
        return self.inner.quotes(symbols)

    def ltp(self, symbols):
        self.calls.append(("ltp", tuple(symbols)))
        return self.inner.ltp(symbols)

    def option_chain(self, underlying, expiry):
        return self.inner.option_chain(underlying, expiry)

    def expiries(self, underlying):
        return self.inner.expiries(underlying)

    def tick(self, symbols, now):
        return self.inner.tick(symbols, now)


@pytest.fixture
def ctx(app):
    from backend.services import market_data as md
    from backend.services.cache import get_cache

    with app.app_context():
        inner = md.provider()
        get_cache().flush()
        yield md, inner
        md.set_provider(inner)
        get_cache().flush()


def _use(md, inner, **kw):
    rec = Recording(inner, **kw)
    md.set_provider(rec)
    return rec


def _count(md, symbol, interval):
    return md.stored_count(symbol, interval)


JAN2 = datetime(2024, 1, 2, 3, 45, tzinfo=UTC)
JAN5_END = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)


def test_second_read_makes_no_provider_call_even_with_cache_flushed(ctx):
    from backend.services.cache import get_cache

    md, inner = ctx
    rec = _use(md, inner)
    first = md.candles("TCS", "15m", JAN2, JAN5_END)
    assert len(rec.calls) == 1
    assert len(first) == 4 * 25  # four sessions of 25 fifteen-minute bars
    assert first == inner.candles("TCS", "15m", JAN2, JAN5_END)
    get_cache().flush()  # prove the store, not the cache, serves the repeat
    second = md.candles("TCS", "15m", JAN2, JAN5_END)
    assert len(rec.calls) == 1
    assert second == first
    # A sub-range is covered too.
    md.candles("TCS", "15m", datetime(2024, 1, 3, 4, 0, tzinfo=UTC), datetime(2024, 1, 4, 4, 0, tzinfo=UTC))
    assert len(rec.calls) == 1


def test_read_fetches_only_the_missing_span(ctx):
    md, inner = ctx
    rec = _use(md, inner)
    md.candles("INFY", "1d", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC))
    md.candles("INFY", "1d", datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC))
    assert len(rec.calls) == 2
    _sym, _iv, start, end = rec.calls[1]
    assert start == datetime(2024, 1, 31, tzinfo=UTC) and end == datetime(2024, 2, 29, tzinfo=UTC)
    bars = md.candles("INFY", "1d", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC))
    assert len(rec.calls) == 2
    assert [b.ts for b in bars] == sorted({b.ts for b in bars})  # no duplicate at the seam
    assert bars == inner.candles(
        "INFY", "1d", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)
    )


def test_interrupted_sync_keeps_rows_and_resync_adds_only_missing(ctx):
    from datetime import timedelta

    md, inner = ctx
    start, end = datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 6, 30, tzinfo=UTC)
    rec = _use(md, inner, fail_after=2)
    report = md.sync_candles("ITC", "1d", start, end, chunk=timedelta(days=30))
    assert report.error and "provider down" in report.error
    assert report.chunks == 2
    kept = _count(md, "ITC", "1d")
    expected_kept = len(inner.candles("ITC", "1d", start, start + timedelta(days=60)))
    assert kept == expected_kept > 0

    rec = _use(md, inner)
    report = md.sync_candles("ITC", "1d", start, end, chunk=timedelta(days=30))
    assert report.error is None
    assert report.skipped == 2  # the two stored chunks are not fetched again
    assert all(c[2] >= start + timedelta(days=60) for c in rec.calls)
    total = len(inner.candles("ITC", "1d", start, end))
    assert _count(md, "ITC", "1d") == total
    assert report.added == total - kept

    rec = _use(md, inner)
    report = md.sync_candles("ITC", "1d", start, end, chunk=timedelta(days=30))
    assert rec.calls == [] and report.added == 0


def test_sync_never_rewrites_existing_rows(ctx, app):
    from backend.extensions import db
    from backend.models.market import Candle as Row

    md, inner = ctx
    _use(md, inner)
    start, end = datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 3, 31, tzinfo=UTC)
    md.sync_candles("NTPC", "1d", start, end)
    ids = set(db.session.scalars(select(Row.id)).all())
    md.sync_candles("NTPC", "1d", start, datetime(2023, 4, 30, tzinfo=UTC))
    after = set(db.session.scalars(select(Row.id)).all())
    assert ids < after  # old rows (same ids) kept, new ones added
    assert db.session.scalar(select(func.count(Row.id))) == len(after)


def test_gaps_helper():
    from backend.services.market_data import gaps

    d = lambda day: datetime(2024, 1, day, tzinfo=UTC)  # noqa: E731
    assert gaps([], d(1), d(10)) == [(d(1), d(10))]
    assert gaps([(d(1), d(10))], d(2), d(5)) == []
    assert gaps([(d(3), d(5))], d(1), d(10)) == [(d(1), d(3)), (d(5), d(10))]
    assert gaps([(d(1), d(4)), (d(6), d(12))], d(2), d(10)) == [(d(4), d(6))]
    assert gaps([], d(2), d(2)) == [(d(2), d(2))]


def test_quotes_for_n_symbols_make_one_provider_call(ctx):
    md, inner = ctx
    rec = _use(md, inner)
    symbols = ["RELIANCE", "TCS", "INFY", "SBIN", "ITC", "NIFTY"]
    first = md.quotes(symbols)
    assert [q.symbol for q in first] == symbols
    assert rec.calls == [("quotes", tuple(symbols))]
    md.quotes(symbols)  # within the TTL: all from the cache
    assert len(rec.calls) == 1
    md.ltp(["WIPRO", "LT", "ONGC"])
    assert rec.calls[-1] == ("ltp", ("WIPRO", "LT", "ONGC"))
    assert len(rec.calls) == 2
