from decimal import Decimal as D

import pytest

from backend.domain.errors import Conflict, ValidationFailed
from backend.domain.orders import (
    TERMINAL_STATES,
    Instrument,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
    can_transition,
    transition,
    validate_order,
    validate_trigger_against_ltp,
)

INST = Instrument("RELIANCE", tick_size=D("0.05"), lot_size=1)
LOT = Instrument("NIFTYETF", tick_size=D("0.01"), lot_size=25)


def req(type_, side=Side.BUY, qty=10, price=None, trigger=None, symbol="RELIANCE"):
    return OrderRequest(symbol, side, OrderType(type_), Product.I, qty, Validity.DAY, price, trigger)


def errors_of(r, inst=INST):
    with pytest.raises(ValidationFailed) as ei:
        validate_order(r, inst)
    return ei.value.details


@pytest.mark.parametrize(
    "r",
    [
        req("MARKET"),
        req("LIMIT", price=D("100.05")),
        req("SL", price=D("101.00"), trigger=D("100.50")),
        req("SL", side=Side.SELL, price=D("99.00"), trigger=D("99.50")),
        req("SL-M", trigger=D("100.50")),
        req("SL-M", side=Side.SELL, trigger=D("90.00")),
    ],
)
def test_valid_orders_of_every_type_pass(r):
    validate_order(r, INST)


def test_market_takes_no_price_or_trigger():
    assert set(errors_of(req("MARKET", price=D("100")))) == {"price"}
    assert set(errors_of(req("MARKET", trigger=D("100")))) == {"trigger_price"}


def test_limit_needs_price_and_refuses_trigger():
    assert set(errors_of(req("LIMIT"))) == {"price"}
    assert set(errors_of(req("LIMIT", price=D("100"), trigger=D("99")))) == {"trigger_price"}


def test_sl_needs_price_and_trigger_slm_needs_trigger_only():
    assert set(errors_of(req("SL"))) == {"price", "trigger_price"}
    assert set(errors_of(req("SL-M"))) == {"trigger_price"}
    assert set(errors_of(req("SL-M", price=D("100"), trigger=D("100")))) == {"price"}


def test_price_must_be_on_tick_and_positive():
    d = errors_of(req("LIMIT", price=D("100.03")))
    assert "tick size 0.05" in d["price"]
    assert "positive" in errors_of(req("LIMIT", price=D("-1")))["price"]


def test_quantity_positive_multiple_of_lot():
    assert "positive" in errors_of(req("MARKET", qty=0))["quantity"]
    assert "lot size 25" in errors_of(req("MARKET", qty=30, symbol="NIFTYETF"), LOT)["quantity"]
    validate_order(req("MARKET", qty=50, symbol="NIFTYETF"), LOT)


def test_all_errors_reported_together():
    d = errors_of(req("SL", qty=-1, price=D("100.01"), trigger=D("100.02")))
    assert set(d) == {"quantity", "price", "trigger_price"}


def test_stop_limit_trigger_direction():
    # BUY stop: trigger 101 above limit 100 could never fill after triggering
    assert "trigger_price" in errors_of(req("SL", price=D("100"), trigger=D("101")))
    assert "trigger_price" in errors_of(req("SL", side=Side.SELL, price=D("101"), trigger=D("100")))


def test_trigger_against_ltp():
    validate_trigger_against_ltp(req("SL-M", trigger=D("105")), D("100"))
    with pytest.raises(ValidationFailed):
        validate_trigger_against_ltp(req("SL-M", trigger=D("95")), D("100"))
    with pytest.raises(ValidationFailed):
        validate_trigger_against_ltp(req("SL-M", side=Side.SELL, trigger=D("105")), D("100"))


S = OrderStatus
LEGAL = {
    (S.PENDING, S.OPEN), (S.PENDING, S.TRIGGER_PENDING), (S.PENDING, S.FILLED),
    (S.PENDING, S.PARTIALLY_FILLED),
    (S.PENDING, S.REJECTED), (S.PENDING, S.CANCELLED),
    (S.TRIGGER_PENDING, S.OPEN), (S.TRIGGER_PENDING, S.PARTIALLY_FILLED), (S.TRIGGER_PENDING, S.FILLED),
    (S.TRIGGER_PENDING, S.CANCELLED), (S.TRIGGER_PENDING, S.EXPIRED),
    (S.OPEN, S.PARTIALLY_FILLED), (S.OPEN, S.FILLED), (S.OPEN, S.CANCELLED), (S.OPEN, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELLED), (S.PARTIALLY_FILLED, S.EXPIRED),
}  # fmt: skip
# live orders: committed ``submitting`` before the broker call, ``unknown`` when it got no answer;
# ``unknown -> submitting`` is the one resend a confirmed absence allows
_AFTER_SEND = {S.PENDING, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELLED}
LEGAL |= {(S.SUBMITTING, s) for s in _AFTER_SEND | {S.UNKNOWN, S.OTHER}}
LEGAL |= {(S.UNKNOWN, s) for s in _AFTER_SEND | {S.SUBMITTING, S.OTHER}}
# a broker status text we do not know (``other``): any working order may become it, and it may become
# any status the broker reports next
LEGAL |= {(s, S.OTHER) for s in (S.PENDING, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED)}
LEGAL |= {(S.OTHER, s) for s in _AFTER_SEND | {S.OTHER, S.EXPIRED}}


@pytest.mark.parametrize("cur", list(S))
@pytest.mark.parametrize("new", list(S))
def test_every_transition(cur, new):
    if (cur, new) in LEGAL:
        assert transition(cur, new) is new
        assert can_transition(cur, new)
    else:
        with pytest.raises(Conflict) as ei:
            transition(cur, new)
        assert ei.value.code == "ILLEGAL_TRANSITION"
        assert ei.value.details == {"from": cur.value, "to": new.value}


def test_terminal_states_have_no_exit():
    assert {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED} == TERMINAL_STATES
    for t in TERMINAL_STATES:
        assert not any(can_transition(t, n) for n in S)


def test_transition_accepts_string_values():
    assert transition("open", "filled") is S.FILLED
