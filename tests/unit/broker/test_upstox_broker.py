"""UpstoxBroker against the local HTTP stub: orders, status mapping, errors, throttling, circuit, tags."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.broker.base import Broker, OrderModification
from backend.domain.broker.upstox import STATUS_MAP, map_status
from backend.domain.errors import (
    BrokerTokenExpired,
    BrokerUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity
from tests.stubs.upstox_orders_stub import book_of
from tests.stubs.upstox_stub import INVALID_TOKEN, SERVER_ERROR, TOO_MANY_REQUESTS

ACCT = "42"


def limit_buy(**kw) -> OrderRequest:
    base = dict(
        symbol="RELIANCE",
        side=Side.BUY,
        type=OrderType.LIMIT,
        product=Product.D,
        quantity=10,
        price=Decimal("1402.5"),
        client_order_id="cid-0001",
    )
    base.update(kw)
    return OrderRequest(**base)


def test_adapter_satisfies_the_broker_protocol(make_broker):
    assert isinstance(make_broker(), Broker)


def test_place_sends_documented_v3_body_with_tag_and_algo_header(make_broker, upstox_stub):
    _, state = upstox_stub
    out = make_broker().place_order(ACCT, limit_buy())
    call = state.calls("/v3/order/place")[0]
    assert call.method == "POST"
    assert call.headers["Authorization"] == "Bearer test-token"
    assert call.headers["X-Algo-Name"] == "test-algo"
    row = book_of(state).orders[out.order_id]
    assert row["tag"] == "cid-0001"
    assert row["instrument_token"] == "NSE_EQ|INE002A01018"
    assert row["price"] == 1402.5 and row["quantity"] == 10 and row["order_type"] == "LIMIT"
    assert out.status is OrderStatus.PENDING and out.client_order_id == "cid-0001"


def test_place_market_sends_zero_price_and_sl_sends_trigger(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    m = b.place_order(ACCT, limit_buy(type=OrderType.MARKET, price=None, client_order_id="m1"))
    s = b.place_order(
        ACCT,
        limit_buy(
            type=OrderType.SL,
            side=Side.SELL,
            price=Decimal("1390"),
            trigger_price=Decimal("1395"),
            client_order_id="s1",
        ),
    )
    book = book_of(state)
    assert book.orders[m.order_id]["price"] == 0 and book.orders[m.order_id]["trigger_price"] == 0
    assert book.orders[s.order_id]["trigger_price"] == 1395.0
    assert book.orders[s.order_id]["transaction_type"] == "SELL"


def test_get_order_maps_fields(make_broker, upstox_stub):
    _, state = upstox_stub
    row = book_of(state).add_order(
        quantity=10,
        filled_quantity=10,
        average_price=1401.05,
        price=1402.5,
        order_type="LIMIT",
        status="complete",
        tag="t-1",
        order_timestamp="2025-11-20 10:15:00",
    )
    o = make_broker().get_order(ACCT, row["order_id"])
    assert o.symbol == "RELIANCE"  # from the instrument key, not "RELIANCE-EQ"
    assert o.status is OrderStatus.FILLED
    assert o.average_price == Decimal("1401.05") and o.price == Decimal("1402.5")
    assert o.tag == "t-1" and o.filled_quantity == 10 and o.pending_quantity == 0
    assert o.placed_at == datetime(2025, 11, 20, 4, 45, tzinfo=UTC)  # 10:15 IST


@pytest.mark.parametrize(
    "raw, filled, expected",
    [
        ("put order req received", 0, OrderStatus.PENDING),
        ("open", 0, OrderStatus.OPEN),
        ("open", 4, OrderStatus.PARTIALLY_FILLED),
        ("trigger pending", 0, OrderStatus.TRIGGER_PENDING),
        ("modify pending", 0, OrderStatus.OPEN),
        ("modified", 0, OrderStatus.OPEN),
        ("modified", 3, OrderStatus.PARTIALLY_FILLED),
        ("cancel pending", 0, OrderStatus.OPEN),
        ("complete", 10, OrderStatus.FILLED),
        ("cancelled", 0, OrderStatus.CANCELLED),
        ("cancelled", 6, OrderStatus.CANCELLED),  # partial fills kept, rest dropped
        ("rejected", 0, OrderStatus.REJECTED),
    ],
)
def test_every_documented_status_through_the_order_book(make_broker, upstox_stub, raw, filled, expected):
    _, state = upstox_stub
    book_of(state).add_order(quantity=10, filled_quantity=filled, status=raw, tag="s")
    (o,) = make_broker().list_orders(ACCT)
    assert o.status is expected
    assert o.filled_quantity == filled


def test_status_table_covers_the_issue_list():
    required = {
        "put order req received",
        "open",
        "trigger pending",
        "modify pending",
        "modified",
        "cancel pending",
        "complete",
        "cancelled",
        "rejected",
    }
    assert required <= set(STATUS_MAP)
    assert map_status("Complete") is OrderStatus.FILLED  # case-insensitive
    # a status Upstox adds later maps to ``other`` (its text is kept on the order), never raises
    assert map_status("something new") is OrderStatus.OTHER


def test_modify_sends_full_v3_body_and_returns_new_state(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    placed = b.place_order(ACCT, limit_buy())
    out = b.modify_order(ACCT, placed.order_id, OrderModification(price=Decimal("1399.95"), quantity=12))
    row = book_of(state).orders[placed.order_id]
    assert row["price"] == 1399.95 and row["quantity"] == 12 and row["validity"] == "DAY"
    assert out.price == Decimal("1399.95") and out.quantity == 12 and out.status is OrderStatus.OPEN
    assert [c.method for c in state.calls("/v3/order/modify")] == ["PUT"]


def test_cancel_then_cancel_again_is_a_clear_error(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    placed = b.place_order(ACCT, limit_buy())
    out = b.cancel_order(ACCT, placed.order_id)
    assert out.status is OrderStatus.CANCELLED
    assert state.calls("/v3/order/cancel")[0].args == {"order_id": placed.order_id}
    with pytest.raises(ValidationFailed) as e:
        b.cancel_order(ACCT, placed.order_id)
    assert "already cancelled" in e.value.message and e.value.details["upstox_error_code"] == "UDAPI100040"


def test_unknown_order_is_not_found(make_broker):
    with pytest.raises(NotFound) as e:
        make_broker().get_order(ACCT, "999")
    assert e.value.code == "BROKER_ORDER_NOT_FOUND" and "Order not found" in e.value.message


def test_error_body_becomes_validation_error_with_upstox_message(make_broker):
    with pytest.raises(ValidationFailed) as e:
        make_broker().place_order(ACCT, limit_buy(quantity=200_000))
    assert e.value.message == "Upstox rejected the request: Insufficient funds"
    assert e.value.details["upstox_error_code"] == "UDAPI1053" and e.value.details["http_status"] == 400


def test_429_on_order_without_retries_is_rate_limited(make_broker, upstox_stub):
    _, state = upstox_stub
    state.fail_next(TOO_MANY_REQUESTS)
    with pytest.raises(RateLimited) as e:
        make_broker(rate_limit_retries=0).place_order(ACCT, limit_buy())
    assert e.value.details == {"upstox_error_code": "UDAPI10005", "http_status": 429, "retry_after": 1}
    assert len(state.calls("/v3/order/place")) == 1 and not book_of(state).orders


def test_429_on_get_is_retried_with_backoff(make_broker, upstox_stub, fake_time):
    _, state = upstox_stub
    state.fail_next(TOO_MANY_REQUESTS, times=2)
    assert make_broker(retry_wait_initial=0.5, retry_wait_max=4.0).list_orders(ACCT) == []
    assert len(state.calls("/v2/order/retrieve-all")) == 3
    # exponential: first wait ~0.5 s, second ~1 s, each plus up to 0.5 s of jitter
    assert len(fake_time.sleeps) == 2
    assert 0.5 <= fake_time.sleeps[0] <= 1.0 and 1.0 <= fake_time.sleeps[1] <= 1.5


def test_token_bucket_spaces_order_bursts(make_broker, upstox_stub, fake_time):
    _, state = upstox_stub
    b = make_broker(order_rate_per_second=5.0, order_burst=5)
    for i in range(7):
        b.place_order(ACCT, limit_buy(client_order_id=f"b{i}"))
    assert len(book_of(state).orders) == 7
    # 5 go at once, then one every 1/5 s: never more than 5 per second of (fake) time
    assert fake_time.sleeps == pytest.approx([0.2, 0.2])


def test_get_retries_5xx_then_succeeds(make_broker, upstox_stub):
    _, state = upstox_stub
    state.fail_next(SERVER_ERROR, times=2)
    funds = make_broker().funds(ACCT)
    assert funds.available_cash == Decimal("98500.25") and funds.used_margin == Decimal("1500.5")
    assert funds.total == Decimal("100000.75")
    assert len(state.calls("/v2/user/get-funds-and-margin")) == 3


def test_5xx_burst_opens_circuit_fails_fast_and_recovers(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker(breaker_fail_max=3, retry_attempts=1)
    state.fail_next(SERVER_ERROR, times=3)
    for _ in range(3):
        with pytest.raises(BrokerUnavailable) as e:
            b.positions(ACCT)
        assert e.value.details["upstox_error_code"] == "UDAPI100500"
    assert b.circuit_state()["state"] == "open"
    sent = len(state.requests)
    with pytest.raises(BrokerUnavailable) as e:
        b.place_order(ACCT, limit_buy())
    assert e.value.code == "BROKER_UNAVAILABLE" and e.value.details["circuit"] == "open"
    assert len(state.requests) == sent  # failed fast: nothing reached Upstox
    # reset timeout elapses (wind the breaker's clock back instead of sleeping)
    b.breaker._state_storage.opened_at = datetime.now(UTC) - timedelta(seconds=31)
    assert b.positions(ACCT) == []  # half-open trial succeeds
    assert b.circuit_state()["state"] == "closed"


def test_business_errors_do_not_trip_the_circuit(make_broker):
    b = make_broker(breaker_fail_max=2)
    for _ in range(4):
        with pytest.raises(NotFound):
            b.get_order(ACCT, "nope")
    assert b.circuit_state()["state"] == "closed"


def test_timeout_after_acceptance_is_unknown_never_resent_and_found_by_tag(make_broker, upstox_stub):
    _, state = upstox_stub
    book = book_of(state)
    book.hang_next_place = 1
    b = make_broker(read_timeout=0.3)
    with pytest.raises(BrokerUnavailable) as e:
        b.place_order(ACCT, limit_buy(client_order_id="tmo-1"))
    book.release.set()
    assert e.value.details == {"tag": "tmo-1", "outcome": "unknown"}
    assert len(state.calls("/v3/order/place")) == 1  # the adapter never re-sends on its own
    found = b.find_by_tag(ACCT, "tmo-1")
    assert found is not None and found.order_id in book.orders and found.status is OrderStatus.OPEN


def test_5xx_on_place_is_unknown_and_the_adapter_keeps_no_memory(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker(breaker_fail_max=10)
    state.fail_next(SERVER_ERROR)
    with pytest.raises(BrokerUnavailable) as e:
        b.place_order(ACCT, limit_buy(client_order_id="u-1"))
    assert e.value.details == {"tag": "u-1", "outcome": "unknown"}
    assert book_of(state).orders == {} and b.find_by_tag(ACCT, "u-1") is None


def test_order_writes_go_to_the_order_host_and_reads_to_the_api_host(upstox_stub, fake_time):
    from backend.domain.broker.order_limits import LocalOrderWindows
    from backend.domain.broker.upstox import UpstoxBroker, UpstoxSettings
    from tests.unit.broker.conftest import REG

    base, state = upstox_stub
    seen: list[str] = []

    class Recording:
        def request(self, method, url, **kw):
            import requests

            seen.append(url)
            return requests.request(method, url.replace("http://orders.invalid", base), **kw)

    b = UpstoxBroker(
        token_provider=lambda a: "test-token",
        instruments=REG,
        settings=UpstoxSettings(base_url=base, order_base_url="http://orders.invalid"),
        session=Recording(),
        order_windows=LocalOrderWindows(clock=fake_time.clock),
        sleep=fake_time.sleep,
    )
    placed = b.place_order(ACCT, limit_buy(client_order_id="h-1"))
    b.cancel_order(ACCT, placed.order_id)
    assert seen[0] == "http://orders.invalid/v3/order/place"
    assert seen[1] == "http://orders.invalid/v3/order/cancel"
    assert seen[2].startswith(base + "/v2/order/details")


def test_market_and_sl_m_carry_market_protection_limit_does_not(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    b.place_order(ACCT, limit_buy(type=OrderType.MARKET, price=None, client_order_id="m"))
    b.place_order(
        ACCT, limit_buy(type=OrderType.SL_M, price=None, trigger_price=Decimal("990"), client_order_id="s")
    )
    b.place_order(ACCT, limit_buy(client_order_id="l"))
    by_tag = {o["tag"]: o for o in book_of(state).orders.values()}
    assert by_tag["m"]["market_protection"] == -1 and by_tag["s"]["market_protection"] == -1
    assert by_tag["l"]["market_protection"] is None
    b2 = make_broker(market_protection=5.0)
    b2.place_order(ACCT, limit_buy(type=OrderType.MARKET, price=None, client_order_id="m5"))
    assert {o["tag"]: o for o in book_of(state).orders.values()}["m5"]["market_protection"] == 5


def test_429_burst_backs_off_shared_and_places_exactly_once(make_broker, upstox_stub, fake_time):
    from backend.domain.broker.order_limits import LocalOrderWindows

    _, state = upstox_stub
    windows = LocalOrderWindows(clock=fake_time.clock)
    b = make_broker(windows=windows, rate_limit_backoff=0.5, rate_limit_retries=3, order_max_wait=10)
    state.fail_next(TOO_MANY_REQUESTS, times=3)
    placed = b.place_order(ACCT, limit_buy(client_order_id="burst"))
    assert len(state.calls("/v3/order/place")) == 4  # 3 refusals (nothing placed) + 1 acceptance
    assert [o["tag"] for o in book_of(state).orders.values()] == ["burst"]
    assert placed.tag == "burst"
    # the cool-down doubled on each refusal: 0.5, 1, 2 seconds
    assert fake_time.sleeps[-3:] == pytest.approx([0.5, 1.0, 2.0])
    # the cool-down is in the shared windows: another adapter on them waits too
    windows.cool_down(ACCT, 1.5)
    other = make_broker(windows=windows, order_max_wait=0.5)
    with pytest.raises(RateLimited) as e:
        other.place_order(ACCT, limit_buy(client_order_id="after"))
    assert e.value.details["retry_after"] == 2
    assert len(state.calls("/v3/order/place")) == 4  # refused before sending


def test_429_that_does_not_stop_is_rate_limited_after_the_retries(make_broker, upstox_stub, fake_time):
    _, state = upstox_stub
    b = make_broker(rate_limit_backoff=0.1, rate_limit_retries=2, order_max_wait=10)
    state.fail_next(TOO_MANY_REQUESTS, times=5)
    with pytest.raises(RateLimited):
        b.place_order(ACCT, limit_buy(client_order_id="x"))
    assert len(state.calls("/v3/order/place")) == 3 and book_of(state).orders == {}


def test_mtf_and_unknown_texts_in_the_book_map_to_other_and_keep_the_raw_text(make_broker, upstox_stub):
    _, state = upstox_stub
    book = book_of(state)
    book.add_order(product="MTF", status="complete", quantity=3, filled_quantity=3, average_price=101.5)
    book.add_order(product="CO", status="brand new status", order_type="WEIRD", validity="GTT")
    got = {o.raw_product: o for o in make_broker().list_orders(ACCT)}
    assert got["MTF"].product is Product.OTHER and got["MTF"].status is OrderStatus.FILLED
    assert got["CO"].product is Product.OTHER and got["CO"].status is OrderStatus.OTHER
    assert got["CO"].raw_status == "brand new status"
    assert got["CO"].type is OrderType.MARKET and got["CO"].validity is Validity.DAY


def test_expired_token_is_broker_token_expired_with_relogin_hint(make_broker):
    with pytest.raises(BrokerTokenExpired) as e:
        make_broker(token="stale").list_orders(ACCT)
    assert (
        e.value.code == "BROKER_TOKEN_EXPIRED"
        and e.value.details["relogin"] == "/api/v1/broker/upstox/authorize"
    )
    assert "log in to Upstox again" in e.value.message


def test_token_revoked_mid_session(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    b.list_orders(ACCT)
    state.fail_next(INVALID_TOKEN)
    with pytest.raises(BrokerTokenExpired):
        b.place_order(ACCT, limit_buy())
    assert b.circuit_state()["state"] == "closed"


def test_positions_holdings_and_trades(make_broker, upstox_stub):
    _, state = upstox_stub
    book = book_of(state)
    book.positions.append(
        {
            "exchange": "NSE",
            "product": "I",
            "instrument_token": "NSE_EQ|INE467B01029",
            "trading_symbol": "TCS-EQ",
            "quantity": -5,
            "average_price": 3450.1,
            "last_price": 3440.0,
            "realised": 0,
            "unrealised": 50.5,
            "multiplier": 1,
        }
    )
    book.holdings.append(
        {
            "isin": "INE009A01021",
            "instrument_token": "NSE_EQ|INE009A01021",
            "trading_symbol": "INFY",
            "quantity": 20,
            "average_price": 1500.25,
            "last_price": 1560.0,
            "product": "D",
        }
    )
    book.trades.append(
        {
            "exchange": "NSE",
            "product": "D",
            "trading_symbol": "RELIANCE-EQ",
            "instrument_token": "NSE_EQ|INE002A01018",
            "order_type": "LIMIT",
            "transaction_type": "BUY",
            "quantity": 10,
            "order_id": "1",
            "trade_id": "T1",
            "average_price": 1401.05,
            "exchange_timestamp": "2025-11-20 10:16:00",
            "tag": "cid-0001",
        }
    )
    b = make_broker()
    (p,) = b.positions(ACCT)
    assert (p.symbol, p.product, p.quantity, p.average_price, p.unrealised_pnl) == (
        "TCS",
        Product.I,
        -5,
        Decimal("3450.1"),
        Decimal("50.5"),
    )
    (h,) = b.holdings(ACCT)
    assert (h.symbol, h.quantity, h.average_price) == ("INFY", 20, Decimal("1500.25"))
    (t,) = b.trades(ACCT)
    assert (t.symbol, t.side, t.quantity, t.price, t.tag) == (
        "RELIANCE",
        Side.BUY,
        10,
        Decimal("1401.05"),
        "cid-0001",
    )


def test_oauth_code_exchange_is_form_encoded_and_single_use(make_broker, upstox_stub):
    _, state = upstox_stub
    book = book_of(state)
    book.issue_code("code-1", "fresh-token")
    b = make_broker()
    body = b.exchange_code("code-1", book.client_id, book.client_secret, book.redirect_uri)
    assert body["access_token"] == "fresh-token" and body["user_id"] == "AB1234"
    assert book.token_requests[0]["content_type"] == "application/x-www-form-urlencoded"
    assert book.token_requests[0]["grant_type"] == "authorization_code"
    with pytest.raises(ValidationFailed) as e:
        b.exchange_code("code-1", book.client_id, book.client_secret, book.redirect_uri)
    assert e.value.code == "BROKER_AUTH_FAILED" and "Invalid Auth code" in e.value.message


def test_modify_validity_and_type(make_broker, upstox_stub):
    _, state = upstox_stub
    b = make_broker()
    placed = b.place_order(ACCT, limit_buy())
    b.modify_order(ACCT, placed.order_id, OrderModification(type=OrderType.MARKET, validity=Validity.IOC))
    row = book_of(state).orders[placed.order_id]
    assert (row["order_type"], row["validity"], row["price"]) == ("MARKET", "IOC", 0)
    assert json.dumps(row)  # stays serialisable
