from datetime import UTC, datetime
from decimal import Decimal as D

from backend.domain.market.types import Quote, Tick
from backend.domain.orders.fills import (
    Fill,
    FillConfig,
    OrderState,
    evaluate,
    expire_at_session_close,
    round_to_tick,
)
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity

TS = datetime(2025, 1, 2, 4, 0, tzinfo=UTC)
CFG = FillConfig(slippage_bps=D("5"), market_collar_pct=D("2"))


def tick(ltp, bid, ask, volume=1000):
    return Tick("X", D(ltp), D(bid), D(ask), volume, TS)


def state(
    type_,
    side=Side.BUY,
    qty=60,
    price=None,
    trigger=None,
    validity=Validity.DAY,
    status=None,
    filled=0,
    lot=1,
):
    r = OrderRequest("X", side, OrderType(type_), Product.I, qty, validity, price, trigger)
    if status is None:
        status = OrderStatus.TRIGGER_PENDING if r.is_stop else OrderStatus.OPEN
    return OrderState(r, status, filled, D("0.05"), lot)


def test_round_to_tick_against_trader():
    assert round_to_tick(D("100.01"), D("0.05"), Side.BUY) == D("100.05")
    assert round_to_tick(D("100.04"), D("0.05"), Side.SELL) == D("100.00")
    assert round_to_tick(D("100.05"), D("0.05"), Side.BUY) == D("100.05")


def test_market_buy_at_ask_plus_slippage_rounded_up():
    # 100.05 * 1.0005 = 100.100025 -> up to tick 100.15 (collar 102.00 not binding)
    d = evaluate(state("MARKET"), tick("100", "99.95", "100.05"), CFG)
    assert d.fills == [Fill(60, D("100.15"))]
    assert d.new_status is OrderStatus.FILLED


def test_market_sell_at_bid_minus_slippage_rounded_down():
    # 99.95 * 0.9995 = 99.900025 -> down to 99.90
    d = evaluate(state("MARKET", side=Side.SELL), tick("100", "99.95", "100.05"), CFG)
    assert d.fills == [Fill(60, D("99.90"))]


def test_market_collar_caps_slippage():
    cfg = FillConfig(slippage_bps=D("500"), market_collar_pct=D("2"))
    # 100.05 * 1.05 = 105.0525 but a BUY never fills above 100 * 1.02 = 102.00
    assert evaluate(state("MARKET"), tick("100", "99.95", "100.05"), cfg).fills == [Fill(60, D("102.00"))]
    # SELL: 99.95 * 0.95 = 94.9525, floor 100 * 0.98 = 98.00
    d = evaluate(state("MARKET", side=Side.SELL), tick("100", "99.95", "100.05"), cfg)
    assert d.fills == [Fill(60, D("98.00"))]


def test_market_touch_beyond_collar_does_not_fill():
    t = tick("100", "99.95", "103.00")
    d = evaluate(state("MARKET"), t, CFG)
    assert d.fills == [] and d.new_status is OrderStatus.OPEN and d.reason == "beyond_market_protection"
    d = evaluate(state("MARKET", validity=Validity.IOC), t, CFG)
    assert d.new_status is OrderStatus.CANCELLED and d.fills == []


def test_empty_book_falls_back_to_ltp():
    # ask 0 -> ltp 100 * 1.0005 = 100.05
    assert evaluate(state("MARKET"), tick("100", "0", "0"), CFG).fills == [Fill(60, D("100.05"))]


def test_limit_buy_fills_only_when_ask_crosses_at_better_price():
    s = state("LIMIT", price=D("100.00"))
    d = evaluate(s, tick("100.05", "100.00", "100.10"), CFG)
    assert d.fills == [] and d.new_status is OrderStatus.OPEN and d.reason == "limit_not_crossed"
    d = evaluate(s, tick("99.90", "99.85", "99.90"), CFG)
    assert d.fills == [Fill(60, D("99.90"))] and d.new_status is OrderStatus.FILLED
    d = evaluate(s, tick("100", "99.95", "100.00"), CFG)
    assert d.fills == [Fill(60, D("100.00"))]


def test_limit_sell_fills_at_max_of_limit_and_bid():
    s = state("LIMIT", side=Side.SELL, price=D("101.00"))
    assert evaluate(s, tick("101", "100.95", "101.05"), CFG).fills == []
    assert evaluate(s, tick("101.2", "101.20", "101.25"), CFG).fills == [Fill(60, D("101.20"))]


def test_sl_buy_triggers_then_behaves_as_limit():
    s = state("SL", price=D("106.00"), trigger=D("105.00"))
    d = evaluate(s, tick("104.95", "104.90", "104.95"), CFG)
    assert d.new_status is OrderStatus.TRIGGER_PENDING and d.fills == []
    d = evaluate(s, tick("105.00", "105.05", "105.10"), CFG)
    assert d.fills == [Fill(60, D("105.10"))] and d.reason == "triggered;filled"
    # triggered but the ask gapped above the limit: becomes an open limit order
    d = evaluate(s, tick("106.40", "106.40", "106.50"), CFG)
    assert d.fills == [] and d.new_status is OrderStatus.OPEN and d.reason == "triggered;limit_not_crossed"
    opened = state("SL", price=D("106.00"), trigger=D("105.00"), status=OrderStatus.OPEN)
    d = evaluate(opened, tick("106.0", "105.90", "105.95"), CFG)
    assert d.fills == [Fill(60, D("105.95"))]


def test_slm_sell_triggers_on_ltp_at_or_below_trigger_as_market():
    s = state("SL-M", side=Side.SELL, trigger=D("95.00"))
    assert evaluate(s, tick("95.05", "95.00", "95.10"), CFG).new_status is OrderStatus.TRIGGER_PENDING
    # 94.85 * 0.9995 = 94.802575 -> down 94.80; collar floor 94.90 * 0.98 = 93.002 -> up 93.05
    d = evaluate(s, tick("94.90", "94.85", "94.95"), CFG)
    assert d.fills == [Fill(60, D("94.80"))] and d.new_status is OrderStatus.FILLED


def test_slm_buy_triggers_on_ltp_at_or_above():
    s = state("SL-M", trigger=D("105.00"))
    # 105.05 * 1.0005 = 105.102525 -> up 105.15
    assert evaluate(s, tick("105.00", "105.00", "105.05"), CFG).fills == [Fill(60, D("105.15"))]


def test_partial_fills_capped_by_volume_fraction():
    cfg = FillConfig(slippage_bps=D("0"), partial_fills=True, max_volume_fraction=D("0.25"))
    s = state("LIMIT", price=D("100"), qty=60)
    d = evaluate(s, tick("100", "99.95", "100.00", volume=100), cfg)  # cap 25
    assert d.fills == [Fill(25, D("100.00"))] and d.new_status is OrderStatus.PARTIALLY_FILLED
    s2 = state("LIMIT", price=D("100"), qty=60, status=OrderStatus.PARTIALLY_FILLED, filled=25)
    d = evaluate(s2, tick("100", "99.95", "100.00", volume=200), cfg)  # cap 50, 35 remaining
    assert d.fills == [Fill(35, D("100.00"))] and d.new_status is OrderStatus.FILLED
    d = evaluate(s2, tick("100", "99.95", "100.00", volume=3), cfg)  # cap 0: nothing, stays partial
    assert d.fills == [] and d.new_status is OrderStatus.PARTIALLY_FILLED


def test_partial_fill_rounds_down_to_lot():
    cfg = FillConfig(partial_fills=True, max_volume_fraction=D("0.25"))
    s = state("LIMIT", price=D("100"), qty=60, lot=10)
    assert evaluate(s, tick("100", "99.95", "100.00", volume=100), cfg).fills == [Fill(20, D("100.00"))]


def test_ioc_cancels_unfilled_rest():
    cfg = FillConfig(partial_fills=True, max_volume_fraction=D("0.25"))
    s = state("LIMIT", price=D("100"), qty=60, validity=Validity.IOC)
    d = evaluate(s, tick("100", "99.95", "100.00", volume=100), cfg)
    assert d.fills == [Fill(25, D("100.00"))] and d.new_status is OrderStatus.CANCELLED
    assert d.reason == "ioc_partial_rest_cancelled"
    d = evaluate(s, tick("101", "100.95", "101.00"), cfg)
    assert d.fills == [] and d.new_status is OrderStatus.CANCELLED


def test_ioc_stop_waits_for_trigger_before_cancelling():
    s = state("SL", price=D("106"), trigger=D("105"), validity=Validity.IOC)
    assert evaluate(s, tick("104", "103.95", "104.00"), CFG).new_status is OrderStatus.TRIGGER_PENDING


def test_day_orders_expire_at_session_close_terminal_untouched():
    assert expire_at_session_close(state("LIMIT", price=D("100"))).new_status is OrderStatus.EXPIRED
    assert expire_at_session_close(state("SL-M", trigger=D("100"))).new_status is OrderStatus.EXPIRED
    done = state("LIMIT", price=D("100"), status=OrderStatus.FILLED, filled=60)
    assert expire_at_session_close(done).new_status is OrderStatus.FILLED
    assert evaluate(done, tick("100", "99", "100"), CFG).fills == []


def test_quote_is_accepted_as_market_update():
    q = Quote("X", D("100"), D("99.95"), D("100.05"), D("99"), D("101"), D("98"), D("99"), 5000, TS)
    assert evaluate(state("MARKET"), q, CFG).fills == [Fill(60, D("100.15"))]
