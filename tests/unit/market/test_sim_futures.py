"""Index futures in the simulated market: near, next and far monthly contracts, expiries from the
exchange calendar, dated lot sizes, and a price at the cost of carry that converges to the index."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from backend.domain.market.calendar import IST, NseCalendar
from backend.domain.market.instruments import (
    InstrumentRegistry,
    future_expiries,
    generate_future_series,
    seed_indices,
)
from backend.domain.market.simulated import SimulatedProvider

NOW = datetime(2026, 12, 3, 11, 0, tzinfo=IST)


def _sim(**kw) -> SimulatedProvider:
    return SimulatedProvider(clock=lambda: NOW, **kw)


def test_three_monthly_expiries_on_the_last_tuesday_moved_off_holidays():
    # last Tuesdays: 29 Dec 2026, 26 Jan 2027 (Republic Day, a holiday here), 23 Feb 2027
    cal = NseCalendar([date(2027, 1, 26)])
    assert future_expiries(date(2026, 12, 3), cal) == [
        date(2026, 12, 29),
        date(2027, 1, 25),
        date(2027, 2, 23),
    ]
    # on expiry day the expiring contract is still listed; the day after, the cycle rolls
    assert future_expiries(date(2026, 12, 29), cal)[0] == date(2026, 12, 29)
    assert future_expiries(date(2026, 12, 30), cal)[-1] == date(2027, 3, 30)


def test_future_contracts_carry_the_series_lot_size_freeze_quantity_and_type():
    nifty, bank = seed_indices()
    old = generate_future_series(nifty, date(2025, 11, 3))  # Nov, Dec 2025 (lot 75), Jan 2026 (65)
    assert [(f.trading_symbol, f.lot_size) for f in old] == [
        ("NIFTY FUT 25 NOV 25", 75),
        ("NIFTY FUT 30 DEC 25", 75),
        ("NIFTY FUT 27 JAN 26", 65),
    ]
    banks = generate_future_series(bank, date(2026, 12, 3))
    assert {(f.lot_size, f.freeze_quantity, f.instrument_type, f.segment) for f in banks} == {
        (30, 600, "FUT", "NSE_FO")
    }
    assert all(f.underlying == "BANKNIFTY" and f.strike is None for f in banks)
    reg = InstrumentRegistry(old)
    assert [f.expiry for f in reg.futures("nifty")] == [f.expiry for f in old]


def test_simulator_lists_nifty_and_banknifty_futures():
    sim = _sim()
    for sym, lot, freeze in (("NIFTY", 65, 1800), ("BANKNIFTY", 30, 600)):
        futs = sim.instruments.futures(sym)
        assert len(futs) == 3
        assert {(f.lot_size, f.freeze_quantity) for f in futs} == {(lot, freeze)}
        assert sim.instruments.by_symbol(futs[0].trading_symbol) is futs[0]


def test_future_price_is_spot_plus_cost_of_carry():
    sim = _sim(carry_rate=0.0525)
    fut = sim.instruments.futures("NIFTY")[0]  # 29 Dec 2026, closes 15:30 IST
    spot = sim._spot(sim.instruments.by_symbol("NIFTY"), NOW)
    t = (datetime(2026, 12, 29, 15, 30, tzinfo=IST) - NOW).total_seconds() / (365 * 86400)
    # by hand: 26 days 4.5 hours to expiry = 0.071747 years; basis = 5.25% x t = 0.3767%
    assert abs(t - 0.071747) < 1e-6
    q = sim.quotes([fut.trading_symbol])[fut.trading_symbol]
    expected = Decimal(str(round(spot * (1 + 0.0525 * t) / 0.05) * 0.05)).quantize(Decimal("0.05"))
    assert q.ltp == expected
    assert q.ltp > Decimal(str(spot))  # contango: the far month is dearer still
    far = sim.ltp([sim.instruments.futures("NIFTY")[2].trading_symbol])
    assert next(iter(far.values())) > q.ltp
    assert q.bid < q.ltp < q.ask and q.ask - q.bid <= Decimal("2")  # a deep book
    assert q.volume > 0 and q.volume % fut.lot_size == 0


def test_future_converges_to_the_index_close_at_expiry():
    cal_close = datetime(2026, 12, 29, 15, 30, tzinfo=IST)
    sim = SimulatedProvider(clock=lambda: cal_close)
    fut = sim.instruments.futures("NIFTY")[0]
    index = sim.ltp(["NIFTY"])["NIFTY"]
    assert sim.ltp([fut.trading_symbol])[fut.trading_symbol] == index  # final settlement price
    later = datetime(2026, 12, 29, 18, 0, tzinfo=IST).astimezone(UTC)
    ticks = sim.tick([fut.trading_symbol], later)
    assert ticks[0].ltp == index


def test_future_candles_are_the_index_bars_at_the_carry_of_their_time():
    sim = _sim(carry_rate=0.0525)
    fut = sim.instruments.futures("NIFTY")[0]
    start = datetime(2026, 12, 1, 9, 15, tzinfo=IST)
    end = datetime(2026, 12, 2, 15, 30, tzinfo=IST)
    index = sim.candles("NIFTY", "1h", start, end)
    bars = sim.candles(fut.trading_symbol, "1h", start, end)
    assert [b.ts for b in bars] == [b.ts for b in index] and bars
    for i, f in zip(index, bars, strict=True):
        t = (datetime(2026, 12, 29, 15, 30, tzinfo=IST) - f.ts).total_seconds() / (365 * 86400)
        assert abs(float(f.close) - float(i.close) * (1 + 0.0525 * t)) <= 0.025  # to the nearest tick
        assert f.low <= min(f.open, f.close) and f.high >= max(f.open, f.close)
    # nothing after the contract's expiry, though the index trades on
    after = SimulatedProvider(
        clock=lambda: datetime(2027, 1, 10, 12, 0, tzinfo=IST), instruments=sim.instruments
    )
    span = (datetime(2026, 12, 20, tzinfo=IST), datetime(2027, 1, 9, tzinfo=IST))
    days = [b.ts.astimezone(IST).date() for b in after.candles(fut.trading_symbol, "1d", *span)]
    assert days and max(days) == fut.expiry
    assert max(b.ts.astimezone(IST).date() for b in after.candles("NIFTY", "1d", *span)) > fut.expiry
