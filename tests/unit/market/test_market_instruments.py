import json
from datetime import date
from decimal import Decimal

import pytest

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import NseCalendar
from backend.domain.market.instruments import (
    InstrumentRegistry,
    default_registry,
    generate_option_series,
    option_expiries,
    parse_upstox_csv,
    parse_upstox_json,
    seed_equities,
    seed_indices,
    seed_instruments,
)


def test_seed_has_liquid_equities_and_two_indices():
    eq = seed_equities()
    assert len(eq) >= 20
    by_sym = {i.trading_symbol: i for i in eq}
    assert by_sym["RELIANCE"].instrument_key == "NSE_EQ|INE002A01018"
    assert by_sym["TCS"].instrument_key == "NSE_EQ|INE467B01029"
    assert by_sym["HDFCBANK"].sector == "Financial Services"
    assert all(i.segment == "NSE_EQ" and i.instrument_type == "EQ" and i.base_price > 0 for i in eq)
    assert len({i.instrument_key for i in eq}) == len(eq)
    idx = {i.trading_symbol: i for i in seed_indices()}
    assert idx["NIFTY"].instrument_key == "NSE_INDEX|Nifty 50"
    assert idx["BANKNIFTY"].instrument_key == "NSE_INDEX|Nifty Bank"
    assert (idx["NIFTY"].lot_size, idx["BANKNIFTY"].lot_size) == (65, 30)  # from the Jan 2026 series


def test_expiries_weekly_nifty_monthly_banknifty_with_holiday_shift():
    today = date(2025, 11, 24)  # Monday
    assert option_expiries("NIFTY", today, weekly_count=3, monthly_count=2) == [
        date(2025, 11, 25),
        date(2025, 12, 2),
        date(2025, 12, 9),
        date(2025, 12, 30),
    ]
    assert option_expiries("BANKNIFTY", today, monthly_count=2) == [date(2025, 11, 25), date(2025, 12, 30)]
    # A holiday on the expiry Tuesday moves it to Monday.
    cal = NseCalendar(["2025-12-30"])
    assert option_expiries("BANKNIFTY", today, cal, monthly_count=2)[-1] == date(2025, 12, 29)


def test_generated_option_series_strikes_and_lots():
    nifty = next(i for i in seed_indices() if i.trading_symbol == "NIFTY")
    series = generate_option_series(nifty, Decimal("24512.3"), date(2025, 11, 24), strikes_each_side=2)
    first_exp = min(i.expiry for i in series)
    strikes = sorted({i.strike for i in series if i.expiry == first_exp})
    assert strikes == [Decimal(s) for s in (24400, 24450, 24500, 24550, 24600)]
    assert all(i.underlying == "NIFTY" for i in series)
    # lots are dated by series: 75 up to the December 2025 expiries, 65 from January 2026
    assert {(i.expiry < date(2026, 1, 1), i.lot_size) for i in series} == {(True, 75), (False, 65)}
    ce = next(i for i in series if i.expiry == first_exp and i.strike == 24500 and i.instrument_type == "CE")
    assert ce.trading_symbol == "NIFTY 24500 CE 25 NOV 25"
    assert len({i.instrument_key for i in series}) == len(series)
    # Keys are stable across runs (hashlib, not hash()).
    again = generate_option_series(nifty, Decimal("24512.3"), date(2025, 11, 24), strikes_each_side=2)
    assert [i.instrument_key for i in again] == [i.instrument_key for i in series]
    bank = next(i for i in seed_indices() if i.trading_symbol == "BANKNIFTY")
    bstrikes = {
        i.strike
        for i in generate_option_series(bank, Decimal("52040"), date(2025, 11, 24), strikes_each_side=1)
    }
    assert bstrikes == {Decimal(51900), Decimal(52000), Decimal(52100)}


def test_registry_lookups():
    reg = default_registry(date(2025, 11, 24), strikes_each_side=3)
    assert reg.by_symbol("reliance").instrument_key == "NSE_EQ|INE002A01018"
    assert reg.by_key("NSE_INDEX|Nifty 50").trading_symbol == "NIFTY"
    exps = reg.expiries("NIFTY")
    assert exps[0] == date(2025, 11, 25)
    assert len(reg.options("NIFTY", exps[0])) == 7 * 2
    with pytest.raises(NotFound):
        reg.by_symbol("NOPE")
    assert len(InstrumentRegistry(seed_instruments())) == len(seed_instruments())


CSV_HEAD = (
    "instrument_key,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,option_type,exchange\n"
)


def test_parse_upstox_csv():
    text = (
        CSV_HEAD
        + "NSE_FO|164693,164693,RELIANCE24JAN1840CE,RIL,424.8,2024-01-25,1840.0,0.05,250,OPTSTK,CE,NSE_FO\n"
        + "NSE_EQ|INE002A01018,2885,RELIANCE,RELIANCE INDUSTRIES LTD,2600.5,,,0.05,1,EQUITY,,NSE_EQ\n"
        + "NSE_INDEX|Nifty 50,26000,NIFTY,Nifty 50,22000,,,0.05,1,INDEX,,NSE_INDEX\n"
        + "BSE_EQ|INE002A01018,500325,RELIANCE,RELIANCE INDUSTRIES LTD,2600.5,,,0.05,1,EQUITY,,BSE_EQ\n"
        + "NSE_FO|35001,35001,NIFTY24JANFUT,NIFTY,22050,2024-01-25,0,0.05,50,FUTIDX,,NSE_FO\n"
    )
    out = parse_upstox_csv(text)
    assert [i.instrument_type for i in out] == ["CE", "EQ", "INDEX", "FUT"]  # BSE row skipped
    opt = out[0]
    assert opt.strike == Decimal("1840.0") and opt.expiry == date(2024, 1, 25)
    assert opt.lot_size == 250 and opt.tick_size == Decimal("0.05") and opt.underlying == "RELIANCE"
    assert out[3].underlying == "NIFTY" and out[3].strike is None


@pytest.mark.parametrize(
    "row, field",
    [
        ("NSE_FO|1,1,X24JAN100CE,X,1,2024-13-01,100,0.05,50,OPTIDX,CE,NSE_FO", "expiry"),
        ("NSE_FO|1,1,X24JAN100CE,X,1,2024-01-25,abc,0.05,50,OPTIDX,CE,NSE_FO", "strike"),
        ("NSE_EQ|INE1,1,X,X,1,,,0.05,1.5,EQUITY,,NSE_EQ", "lot_size"),
        ("NSE_EQ|INE1,1,X,X,1,,,-1,1,EQUITY,,NSE_EQ", "tick_size"),
        ("NSE_EQ|INE1,1,X,X,1,,,0.05,1,WARRANT,,NSE_EQ", "instrument_type"),
        ("NSE_FO|1,1,X24JAN100CE,X,1,2024-01-25,100,0.05,50,OPTIDX,XX,NSE_FO", "option_type"),
        ("NOPIPE,1,X,X,1,,,0.05,1,EQUITY,,NSE_EQ", "instrument_key"),
    ],
)
def test_parse_upstox_csv_bad_rows_name_row_and_field(row, field):
    good = "NSE_EQ|INE002A01018,2885,RELIANCE,R,1,,,0.05,1,EQUITY,,NSE_EQ\n"
    with pytest.raises(ValidationFailed) as exc:
        parse_upstox_csv(CSV_HEAD + good + row + "\n")
    assert exc.value.details == {"row": 3, "field": field}
    assert "row 3" in exc.value.message and field in exc.value.message


JSON_ROWS = [
    {
        "segment": "NSE_EQ",
        "name": "RELIANCE INDUSTRIES LTD",
        "exchange": "NSE",
        "isin": "INE002A01018",
        "instrument_type": "EQ",
        "instrument_key": "NSE_EQ|INE002A01018",
        "lot_size": 1,
        "freeze_quantity": 100000.0,
        "exchange_token": "2885",
        "tick_size": 10.0,
        "trading_symbol": "RELIANCE",
        "short_name": "Reliance",
        "security_type": "NORMAL",
    },
    {
        "segment": "NSE_FO",
        "name": "NIFTY",
        "exchange": "NSE",
        "expiry": 1764095399000,  # 2025-11-25 23:59:59 IST
        "instrument_type": "CE",
        "instrument_key": "NSE_FO|47001",
        "exchange_token": "47001",
        "trading_symbol": "NIFTY 24500 CE 25 NOV 25",
        "tick_size": 5.0,
        "lot_size": 75,
        "freeze_quantity": 1800.0,
        "underlying_key": "NSE_INDEX|Nifty 50",
        "underlying_type": "INDEX",
        "underlying_symbol": "NIFTY",
        "strike_price": 24500.0,
        "minimum_lot": 75,
        "weekly": True,
    },
    {"segment": "MCX_FO", "instrument_key": "MCX_FO|1", "instrument_type": "FUT", "trading_symbol": "GOLD"},
]


def test_parse_upstox_json():
    out = parse_upstox_json(json.dumps(JSON_ROWS))
    assert len(out) == 2  # MCX skipped
    eq, ce = out
    assert eq.tick_size == Decimal("0.1") and eq.freeze_quantity == 100000
    assert ce.expiry == date(2025, 11, 25) and ce.strike == Decimal("24500.0")
    assert ce.tick_size == Decimal("0.05") and ce.lot_size == 75 and ce.underlying == "NIFTY"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"expiry": "next week"}, "expiry"),
        ({"strike_price": "x"}, "strike_price"),
        ({"lot_size": 0}, "lot_size"),
        ({"trading_symbol": ""}, "trading_symbol"),
        ({"instrument_type": "OPTXYZ"}, "instrument_type"),
    ],
)
def test_parse_upstox_json_bad_rows(patch, field):
    rows = [JSON_ROWS[0], {**JSON_ROWS[1], **patch}]
    with pytest.raises(ValidationFailed) as exc:
        parse_upstox_json(rows)
    assert exc.value.details == {"row": 2, "field": field}


def test_parse_upstox_json_not_json():
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        parse_upstox_json("{nope")


def test_lot_sizes_follow_the_contract_series():
    from backend.domain.market.instruments import lot_size_for

    assert lot_size_for("NIFTY", date(2025, 12, 30)) == 75
    assert lot_size_for("NIFTY", date(2026, 1, 27)) == 65
    assert lot_size_for("BANKNIFTY", date(2025, 6, 26)) == 30
    assert lot_size_for("BANKNIFTY", date(2025, 12, 30)) == 35
    assert lot_size_for("BANKNIFTY", date(2026, 1, 27)) == 30
    assert lot_size_for("RELIANCE", date(2026, 1, 27)) is None
