import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import IST
from backend.domain.market.provider import MAX_RANGE, build_provider, chain_pcr, interval_delta
from backend.domain.market.simulated import SimulatedProvider
from backend.domain.options.pricing import bs_price

HOLIDAYS = ["2025-11-05"]
NOW = datetime(2025, 11, 20, 11, 30, 30, tzinfo=IST)  # Thursday, mid-session


def make(seed=7, now=NOW, **kw):
    return SimulatedProvider(seed=seed, holidays=HOLIDAYS, clock=lambda: now, strikes_each_side=10, **kw)


def ist(*a):
    return datetime(*a, tzinfo=IST)


def test_same_request_same_bars_across_instances():
    a = make().candles("RELIANCE", "15m", ist(2025, 11, 3), ist(2025, 11, 14, 16))
    b = make().candles("RELIANCE", "15m", ist(2025, 11, 3), ist(2025, 11, 14, 16))
    assert a == b and len(a) == 9 * 25  # 9 trading days (5 Nov is a holiday), 25 bars each
    assert make(seed=8).candles("RELIANCE", "15m", ist(2025, 11, 3), ist(2025, 11, 14, 16)) != a


def test_overlapping_ranges_agree_bar_for_bar():
    p = make()
    first = p.candles("INFY", "1m", ist(2025, 11, 18, 10), ist(2025, 11, 18, 12))
    second = make().candles("INFY", "1m", ist(2025, 11, 18, 11), ist(2025, 11, 19, 10))
    overlap = {c.ts for c in first} & {c.ts for c in second}
    assert len(overlap) == 61  # 11:00 .. 12:00 inclusive
    assert [c for c in first if c.ts in overlap] == [c for c in second if c.ts in overlap]
    d1 = p.candles("TCS", "1d", ist(2023, 1, 1), ist(2023, 6, 30))
    d2 = make().candles("TCS", "1d", ist(2023, 3, 1), ist(2023, 9, 30))
    common = {c.ts for c in d1} & {c.ts for c in d2}
    assert len(common) > 80
    assert [c for c in d1 if c.ts in common] == [c for c in d2 if c.ts in common]


def test_intervals_aggregate_from_one_minute_bars():
    p = make()
    day = (ist(2025, 11, 18, 9, 15), ist(2025, 11, 18, 15, 30))
    m1 = p.candles("SBIN", "1m", *day)
    m5 = p.candles("SBIN", "5m", *day)
    h1 = p.candles("SBIN", "1h", *day)
    d1 = p.candles("SBIN", "1d", ist(2025, 11, 18), ist(2025, 11, 18, 23))
    assert (len(m1), len(m5), len(h1), len(d1)) == (375, 75, 7, 1)
    first5 = m1[:5]
    assert m5[0].open == first5[0].open and m5[0].close == first5[-1].close
    assert m5[0].high == max(c.high for c in first5) and m5[0].low == min(c.low for c in first5)
    assert m5[0].volume == sum(c.volume for c in first5)
    assert h1[-1].ts == ist(2025, 11, 18, 15, 15) and h1[-1].close == m1[-1].close  # 15:15-15:30 stub bar
    assert d1[0].open == m1[0].open and d1[0].close == m1[-1].close
    assert d1[0].high == max(c.high for c in m1) and d1[0].volume == sum(c.volume for c in m1)
    for c in m1:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.open % Decimal("0.05") == 0 and c.volume > 0


def test_bars_only_on_trading_days_and_in_session():
    p = make()
    daily = p.candles("ITC", "1d", ist(2025, 11, 1), ist(2025, 11, 16))
    days = [c.ts.astimezone(IST).date() for c in daily]
    assert date(2025, 11, 5) not in days and all(d.weekday() < 5 for d in days)
    assert len(days) == 9
    assert all(c.ts.astimezone(IST).time() == datetime(2000, 1, 1, 9, 15).time() for c in daily)
    intraday = p.candles("ITC", "1h", ist(2025, 11, 7), ist(2025, 11, 10, 23))  # Fri + weekend + Mon
    local = [c.ts.astimezone(IST) for c in intraday]
    assert {t.date() for t in local} == {date(2025, 11, 7), date(2025, 11, 10)}
    assert all(ist(2025, 1, 1, 9, 15).time() <= t.time() < ist(2025, 1, 1, 15, 30).time() for t in local)


def test_candles_never_include_unfinished_or_future_bars():
    p = make()
    bars = p.candles("RELIANCE", "1m", ist(2025, 11, 20, 9), ist(2025, 11, 21, 16))
    assert bars[-1].ts == ist(2025, 11, 20, 11, 29)  # the 11:30 bar is still forming at 11:30:30
    daily = p.candles("RELIANCE", "1d", ist(2025, 11, 1), ist(2025, 11, 30))
    assert daily[-1].ts.astimezone(IST).date() == date(2025, 11, 19)


def test_tick_continues_from_last_close():
    p = make()
    last_bar = p.candles("HDFCBANK", "1m", ist(2025, 11, 20, 11), ist(2025, 11, 20, 11, 29))[-1]
    at_boundary = p.tick(["HDFCBANK"], ist(2025, 11, 20, 11, 30))[0]
    assert at_boundary.ltp == last_bar.close
    mid = p.tick(["HDFCBANK"], ist(2025, 11, 20, 11, 30, 20))[0]
    assert abs(mid.ltp - last_bar.close) / last_bar.close < Decimal("0.003")
    assert mid.bid < mid.ltp < mid.ask and mid.cum_volume >= at_boundary.cum_volume
    # Before the open the tick is the previous session's close; after the close, today's close.
    prev_close = p.candles("HDFCBANK", "1d", ist(2025, 11, 19), ist(2025, 11, 19, 23))[0].close
    assert p.tick(["HDFCBANK"], ist(2025, 11, 20, 8, 0))[0].ltp == prev_close
    late = make(now=ist(2025, 11, 20, 18))
    today_close = late.candles("HDFCBANK", "1d", ist(2025, 11, 20), ist(2025, 11, 20, 23))[0].close
    assert late.tick(["HDFCBANK"], ist(2025, 11, 20, 18))[0].ltp == today_close


def test_quote_fields():
    p = make()
    q = p.quotes(["RELIANCE", "NIFTY"])
    r, n = q["RELIANCE"], q["NIFTY"]
    today = p.candles("RELIANCE", "1m", ist(2025, 11, 20, 9, 15), ist(2025, 11, 20, 9, 15))[0]
    prev = p.candles("RELIANCE", "1d", ist(2025, 11, 19), ist(2025, 11, 19, 23))[0]
    assert r.open == today.open and r.close == prev.close
    assert r.bid < r.ltp < r.ask and r.low <= r.ltp <= r.high
    assert r.instrument_key == "NSE_EQ|INE002A01018" and r.volume > 0
    assert n.bid == n.ltp == n.ask and n.volume == 0  # an index has no book and no volume
    assert p.ltp(["RELIANCE"])["RELIANCE"] == r.ltp


def test_option_chain_matches_black_scholes_and_parity():
    p = make()
    expiry = p.expiries("NIFTY")[0]
    assert expiry == date(2025, 11, 25)
    chain = p.option_chain("NIFTY", expiry)
    assert len(chain.rows) == 21 and chain.lot_size == 75
    spot = float(chain.spot)
    t = (ist(2025, 11, 25, 15, 30) - NOW).total_seconds() / (365 * 86400)
    for row in chain.rows:
        k = float(row.strike)
        c, pu = row.call, row.put
        assert c.iv == pu.iv > 0
        ref = bs_price(spot, k, t, 0.065, c.iv, "CE")
        assert abs(float(c.ltp) - max(ref, 0.05)) < 0.2
        parity = float(c.ltp - pu.ltp) - (spot - k * pow(2.718281828459045, -0.065 * t))
        assert abs(parity) < 0.2
        assert 0 < c.delta < 1 and -1 < pu.delta < 0 and abs(c.delta - pu.delta - 1) < 1e-9
        assert c.gamma > 0 and c.theta < 0 and c.vega > 0
    ivs = [r.call.iv for r in chain.rows]
    assert ivs[0] > ivs[len(ivs) // 2] > ivs[-1] * 0.9  # negative skew: low strikes richer
    put_oi = sum(r.put.oi for r in chain.rows)
    call_oi = sum(r.call.oi for r in chain.rows)
    assert chain_pcr(chain) == pytest.approx(put_oi / call_oi) and call_oi > 0
    assert all(r.call.oi % 75 == 0 for r in chain.rows)


def test_option_quote_priced_from_underlying():
    p = make()
    chain = p.option_chain("NIFTY", date(2025, 11, 25))
    row = chain.rows[10]
    sym = next(
        i.trading_symbol for i in p.instruments.options("NIFTY", date(2025, 11, 25)) if i.strike == row.strike
    )
    q = p.quotes([sym])[sym]
    assert q.ltp in (row.call.ltp, row.put.ltp)


def test_errors():
    p = make()
    with pytest.raises(NotFound):
        p.quotes(["NOSUCH"])
    with pytest.raises(ValidationFailed):
        p.candles("TCS", "2m", ist(2025, 1, 1), ist(2025, 1, 2))
    with pytest.raises(ValidationFailed):
        p.candles("TCS", "1m", ist(2025, 1, 1), ist(2025, 1, 1) + MAX_RANGE["1m"] + timedelta(days=1))
    with pytest.raises(NotFound):
        p.option_chain("NIFTY", date(2025, 11, 26))
    assert interval_delta("1h") == timedelta(hours=1)


def test_factory_builds_by_name():
    prov = build_provider("simulated", seed=3, clock=lambda: NOW)
    assert isinstance(prov, SimulatedProvider) and prov.name == "simulated"
    with pytest.raises(ValidationFailed):
        build_provider("bloomberg")


def test_bars_do_not_depend_on_python_hash_seed():
    root = Path(__file__).resolve().parents[3]
    code = (
        "from datetime import datetime; from zoneinfo import ZoneInfo; "
        "from backend.domain.market.simulated import SimulatedProvider as S; "
        "z=ZoneInfo('Asia/Kolkata'); p=S(seed=5, clock=lambda: datetime(2025,11,20,12,tzinfo=z)); "
        "print(p.candles('TCS','1d',datetime(2025,11,10,tzinfo=z),datetime(2025,11,14,tzinfo=z))[-1].close)"
    )
    outs = set()
    for hs in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hs, "PYTHONPATH": str(root)}
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
    assert len(outs) == 1
