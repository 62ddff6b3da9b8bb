"""Chain analytics on a hand-made chain with hand-computed answers."""

from datetime import date
from decimal import Decimal as D

import pytest

from backend.domain.options.analytics import (
    analyse_chain,
    atm_iv,
    atm_strike,
    max_pain,
    pcr_oi,
    pcr_volume,
    writer_payouts,
)
from backend.domain.options.chain import ChainRow, OptionChain, OptionLeg


def leg(oi, volume, iv=0.0):
    return OptionLeg(ltp=D("1"), oi=oi, volume=volume, iv=iv)


# strike: (call oi, call vol, put oi, put vol)
ROWS = [
    ChainRow(D(90), leg(50, 10), leg(300, 15)),
    ChainRow(D(100), leg(200, 20, 0.20), leg(250, 30, 0.22)),
    ChainRow(D(110), leg(400, 30), leg(50, 45)),
]


def test_pcr_by_open_interest_and_volume():
    assert pcr_oi(ROWS) == pytest.approx(600 / 650)
    assert pcr_volume(ROWS) == pytest.approx(90 / 60)


def test_pcr_is_none_without_call_activity():
    rows = [ChainRow(D(100), leg(0, 0), leg(10, 5))]
    assert pcr_oi(rows) is None
    assert pcr_volume(rows) is None


def test_writer_payouts_hand_computed():
    # Settle 90: puts 100 (250*10) + 110 (50*20) = 3500
    # Settle 100: call 90 (50*10) + put 110 (50*10) = 1000
    # Settle 110: calls 90 (50*20) + 100 (200*10) = 3000
    assert writer_payouts(ROWS) == [(D(90), D(3500)), (D(100), D(1000)), (D(110), D(3000))]
    assert max_pain(ROWS) == D(100)


def test_max_pain_off_centre_and_unordered_rows():
    rows = [
        ChainRow(D(110), leg(10, 0), leg(500, 0)),
        ChainRow(D(100), leg(10, 0), leg(10, 0)),
        ChainRow(D(90), leg(10, 0), leg(10, 0)),
    ]
    # Settle 90: puts 100 (10*10) + 110 (500*20) = 10100; settle 100: call 90 (100) + put 110 (5000) = 5100;
    # settle 110: calls 90 (200) + 100 (100) = 300 -> max pain 110.
    assert dict(writer_payouts(rows)) == {D(90): D(10100), D(100): D(5100), D(110): D(300)}
    assert max_pain(rows) == D(110)


def test_max_pain_tie_picks_lowest_strike_and_empty_chain():
    rows = [ChainRow(D(100), leg(0, 0), leg(0, 0)), ChainRow(D(105), leg(0, 0), leg(0, 0))]
    assert max_pain(rows) == D(100)
    assert max_pain([]) is None


def test_atm_strike_and_iv():
    assert atm_strike(ROWS, D("104")) == D(100)
    assert atm_strike(ROWS, D("105")) == D(100)  # tie -> lower strike
    assert atm_strike(ROWS, D("106")) == D(110)
    assert atm_iv(ROWS, D("101")) == pytest.approx(0.21)
    assert atm_iv(ROWS, D("111")) is None  # no IV known at 110


def test_analyse_chain_bundles_everything():
    a = analyse_chain(ROWS, D("99.5"))
    assert (a.max_pain, a.atm_strike, a.total_call_oi, a.total_put_oi) == (D(100), D(100), 650, 600)
    assert a.pcr_oi == pytest.approx(600 / 650)
    assert a.atm_iv == pytest.approx(0.21)


def test_option_chain_sorts_rows():
    chain = OptionChain("NIFTY", date(2030, 1, 31), D(100), tuple(reversed(ROWS)), 50)
    assert chain.strikes == [D(90), D(100), D(110)]
    assert chain.row(D(110)).call.oi == 400
    assert chain.row(D(120)) is None
