"""Upstox adapter for the ``Broker`` port, with the resilience the live venue needs.

Endpoints (Upstox API documentation):

* orders       POST /v3/order/place, PUT /v3/order/modify, DELETE /v3/order/cancel?order_id=
  (sent to the order host, ``https://api-hft.upstox.com`` as in the official SDK's
  ``Configuration.order_host``; every other call goes to ``https://api.upstox.com``)
* order book   GET /v2/order/retrieve-all; details GET /v2/order/details?order_id=;
  trades GET /v2/order/trades/get-trades-for-day
* portfolio    GET /v2/portfolio/short-term-positions, GET /v2/portfolio/long-term-holdings
* funds        GET /v2/user/get-funds-and-margin?segment=SEC
* feed         GET /v2/feed/portfolio-stream-feed/authorize (portfolio stream socket URI)

Resilience (every knob comes from ``UpstoxSettings``):

* one pybreaker circuit breaker per adapter instance counts transient failures only (5xx, timeouts,
  connection errors); when open, calls fail at once with ``BrokerUnavailable`` (no HTTP call made);
* tenacity retries with exponential backoff and jitter on idempotent GETs only; an order write is
  never retried after a timeout or 5xx (its outcome is unknown: the order service records that and
  looks the order up by ``tag``), only after a 429, which means Upstox refused it;
* per-user order-write windows shared by every worker (``order_limits``: 10/s, 500/min, 2,000/30 min)
  plus a per-process token bucket smoothing bursts; a 429 ``UDAPI10005`` (no Retry-After) sets a
  shared cool-down that doubles on each consecutive refusal;
* a (connect, read) timeout on every call; ``X-Algo-Name`` and any extra headers on every call.

Error bodies ``{"status": "error", "errors": [{"errorCode", "message", ...}]}`` become domain
errors carrying Upstox's message and code: 401 -> BrokerTokenExpired (re-login hint),
429 -> RateLimited, 404 / unknown order -> NotFound, other 4xx -> ValidationFailed,
5xx / network -> BrokerUnavailable.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import pybreaker
import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from backend.domain.broker.base import BrokerOrder, BrokerPosition, Funds, Holding, OrderModification
from backend.domain.broker.order_limits import LocalOrderWindows, OrderWindows
from backend.domain.errors import (
    BrokerTokenExpired,
    BrokerUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from backend.domain.market.calendar import IST
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity
from backend.domain.upstox_http import dec, handle_response, observed

log = logging.getLogger(__name__)

T = TypeVar("T")
TAG_MAX = 40

# Every status Upstox documents (order status appendix) -> our lifecycle. Working states that are
# transitional at Upstox (modify/cancel pending, after-market requests) stay working on our side:
# ``cancelled`` is only final once Upstox says so.
STATUS_MAP: dict[str, OrderStatus] = {
    "put order req received": OrderStatus.PENDING,
    "validation pending": OrderStatus.PENDING,
    "open pending": OrderStatus.PENDING,
    "after market order req received": OrderStatus.PENDING,
    "open": OrderStatus.OPEN,
    "trigger pending": OrderStatus.TRIGGER_PENDING,
    "modify validation pending": OrderStatus.OPEN,
    "modify pending": OrderStatus.OPEN,
    "modify after market order req received": OrderStatus.OPEN,
    "modified": OrderStatus.OPEN,
    "not modified": OrderStatus.OPEN,
    "cancel pending": OrderStatus.OPEN,
    "not cancelled": OrderStatus.OPEN,
    "cancelled after market order": OrderStatus.CANCELLED,
    "complete": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}
# Statuses that say the order is (still) resting at a trigger.
_TRIGGER_WAITING = {"trigger pending"}


def map_status(raw: str | None, filled_quantity: int = 0, quantity: int = 0) -> OrderStatus:
    """Upstox status text -> OrderStatus. A working order with fills is ``partially_filled``.

    A status text Upstox adds later maps to ``other`` (the raw text is kept on the order), never raises."""
    text = (raw or "").strip().lower()
    status = STATUS_MAP.get(text)
    if status is None:
        log.warning("unknown upstox order status %r; mapped to other", raw)
        return OrderStatus.OTHER
    if status in (OrderStatus.OPEN, OrderStatus.PENDING) and 0 < filled_quantity < max(quantity, 1):
        return OrderStatus.PARTIALLY_FILLED
    return status


# --------------------------------------------------------------------------- settings / rate


def map_product(raw: str | None) -> Product:
    """Upstox product code -> Product; MTF, CO, OCO or a new code map to ``other`` (raw kept), never raise."""
    try:
        return Product(raw or "D")
    except ValueError:
        return Product.OTHER


def map_enum(enum: type[T], raw: Any, default: T) -> T:
    try:
        return enum(raw) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class UpstoxSettings:
    base_url: str = "https://api.upstox.com"
    # order writes: the official SDK's order host (upstox-python Configuration.order_host)
    order_base_url: str = "https://api-hft.upstox.com"
    # market_protection for MARKET / SL-M: -1 = automatic (Upstox "Market Price Protection" page);
    # None: not sent
    market_protection: float | None = -1.0
    order_max_wait: float = 2.0  # longest wait for a free order slot before answering 429
    rate_limit_retries: int = 3  # order writes re-sent after a 429 (refused, so not placed)
    rate_limit_backoff: float = 1.0  # first cool-down after a 429, doubled on each further one
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    algo_name: str = "tradeplatform"
    extra_headers: dict[str, str] = field(default_factory=dict)
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 30.0
    retry_attempts: int = 3
    retry_wait_initial: float = 0.2
    retry_wait_max: float = 2.0
    order_rate_per_second: float = 8.0
    order_burst: int = 8

    @classmethod
    def from_config(cls, cfg: Any) -> UpstoxSettings:
        return cls(
            base_url=cfg.get("UPSTOX_API_BASE_URL") or cls.base_url,
            order_base_url=cfg.get("UPSTOX_ORDER_BASE_URL") or cls.order_base_url,
            market_protection=cfg.get("UPSTOX_MARKET_PROTECTION", cls.market_protection),
            order_max_wait=float(cfg.get("UPSTOX_ORDER_MAX_WAIT_SECONDS", cls.order_max_wait)),
            rate_limit_retries=int(cfg.get("UPSTOX_RATE_LIMIT_RETRIES", cls.rate_limit_retries)),
            rate_limit_backoff=float(cfg.get("UPSTOX_RATE_LIMIT_BACKOFF_SECONDS", cls.rate_limit_backoff)),
            connect_timeout=float(cfg.get("UPSTOX_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout)),
            read_timeout=float(cfg.get("UPSTOX_READ_TIMEOUT_SECONDS", cls.read_timeout)),
            algo_name=cfg.get("UPSTOX_ALGO_NAME") or cls.algo_name,
            breaker_fail_max=int(cfg.get("UPSTOX_BREAKER_FAIL_MAX", cls.breaker_fail_max)),
            breaker_reset_seconds=float(cfg.get("UPSTOX_BREAKER_RESET_SECONDS", cls.breaker_reset_seconds)),
            retry_attempts=int(cfg.get("UPSTOX_RETRY_ATTEMPTS", cls.retry_attempts)),
            retry_wait_initial=float(cfg.get("UPSTOX_RETRY_WAIT_INITIAL", cls.retry_wait_initial)),
            retry_wait_max=float(cfg.get("UPSTOX_RETRY_WAIT_MAX", cls.retry_wait_max)),
            order_rate_per_second=float(cfg.get("UPSTOX_ORDER_RATE_PER_SECOND", cls.order_rate_per_second)),
            order_burst=int(cfg.get("UPSTOX_ORDER_BURST", cls.order_burst)),
        )


class TokenBucket:
    """Blocking token bucket: ``acquire`` waits (via ``sleep``) until a token is available."""

    def __init__(
        self,
        rate: float,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("token bucket needs rate > 0 and capacity >= 1")
        self.rate, self.capacity = float(rate), int(capacity)
        self.clock, self.sleep = clock, sleep
        self._tokens = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> float:
        """Take one token; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.rate
            self.sleep(delay)
            waited += delay


def make_breaker(fail_max: int, reset_seconds: float, name: str = "upstox") -> pybreaker.CircuitBreaker:
    """Counts only ``BrokerUnavailable`` (transient venue failures); business errors never trip it."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_seconds,
        exclude=[lambda exc: not isinstance(exc, BrokerUnavailable)],
        state_storage=pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED),
        name=name,
        throw_new_error_on_trip=False,  # the failure that trips it propagates as itself
    )


class InstrumentLookup(Protocol):
    def by_symbol(self, symbol: str) -> Any: ...  # .instrument_key, .trading_symbol

    def by_key(self, instrument_key: str) -> Any | None: ...


class UpstoxTimeout(BrokerUnavailable):
    """The call timed out: the request may or may not have reached Upstox."""


@dataclass(frozen=True, slots=True)
class BrokerTrade:
    trade_id: str
    order_id: str
    symbol: str
    side: Side
    product: Product
    quantity: int
    price: Decimal
    tag: str | None = None
    traded_at: datetime | None = None


# --------------------------------------------------------------------------- adapter


class UpstoxBroker:
    name = "upstox"

    def __init__(
        self,
        token_provider: Callable[[str], str],
        instruments: InstrumentLookup,
        settings: UpstoxSettings | None = None,
        session: requests.Session | None = None,
        breaker: pybreaker.CircuitBreaker | None = None,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        order_windows: OrderWindows | None = None,
    ) -> None:
        self.token_provider = token_provider
        self.instruments = instruments
        self.settings = settings or UpstoxSettings()
        self.base_url = self.settings.base_url.rstrip("/")
        self.order_base_url = (self.settings.order_base_url or self.settings.base_url).rstrip("/")
        self.order_windows: OrderWindows = order_windows or LocalOrderWindows()
        self.session = session or requests.Session()
        self.breaker = breaker or make_breaker(
            self.settings.breaker_fail_max, self.settings.breaker_reset_seconds
        )
        self.bucket = bucket or TokenBucket(
            self.settings.order_rate_per_second, self.settings.order_burst, sleep=sleep
        )
        self._sleep = sleep

    # ------------------------------------------------------------------ HTTP plumbing

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    def _headers(self, account: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "X-Algo-Name": self.settings.algo_name}
        headers.update(self.settings.extra_headers)
        if account is not None:
            headers["Authorization"] = f"Bearer {self.token_provider(account)}"
        return headers

    def _send(
        self, method: str, path: str, account: str | None, base: str | None = None, **kwargs: Any
    ) -> Any:
        """One HTTP attempt through the breaker; returns the success body's ``data``."""
        url = f"{base or self.base_url}{path}"

        def attempt() -> Any:
            headers = self._headers(account)
            try:
                resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.Timeout as exc:
                raise UpstoxTimeout(
                    f"Upstox did not answer {method} {path} in time.", details={"path": path}
                ) from exc
            except requests.RequestException as exc:
                raise BrokerUnavailable(
                    f"Upstox is unreachable ({type(exc).__name__}).", details={"path": path}
                ) from exc
            return handle_response(resp, not_found_code="BROKER_ORDER_NOT_FOUND")

        try:
            return self.breaker.call(observed("broker", method, path, attempt))
        except pybreaker.CircuitBreakerError:
            raise BrokerUnavailable(
                "Upstox is failing; calls are paused by the circuit breaker. Retry shortly.",
                details={"circuit": "open", "retry_after": int(self.settings.breaker_reset_seconds)},
            ) from None

    def _get(self, path: str, account: str | None, params: dict[str, Any] | None = None) -> Any:
        """Idempotent GET: retried with exponential backoff + jitter on transient failures."""

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, BrokerUnavailable):
                return exc.details.get("circuit") != "open"
            return isinstance(exc, RateLimited)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.settings.retry_attempts)),
            wait=wait_exponential_jitter(
                multiplier=self.settings.retry_wait_initial,
                max=self.settings.retry_wait_max,
                jitter=self.settings.retry_wait_initial,
            ),
            retry=retry_if_exception(transient),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send, "GET", path, account, params=params)

    def _order_slot(self, account: str) -> None:
        """Wait for a free slot in every shared window, or answer 429 if that takes too long."""
        waited = 0.0
        while True:
            wait = self.order_windows.try_acquire(account)
            if wait <= 0:
                return
            if waited + wait > self.settings.order_max_wait:
                raise RateLimited(
                    "Upstox order limit reached for this account (10/s, 500/min, 2,000 per 30 min); "
                    "nothing was sent.",
                    details={"retry_after": max(1, int(wait + 0.999))},
                )
            self._sleep(wait)
            waited += wait

    def _write(self, method: str, path: str, account: str, **kwargs: Any) -> Any:
        """Order write to the order host: shared per-user windows, then the per-process bucket.

        Never retried after a timeout / 5xx (outcome unknown). A 429 means Upstox refused the write, so
        it is sent again after a cool-down every worker honours, doubling per consecutive refusal."""
        refusals = 0
        while True:
            self._order_slot(account)
            self.bucket.acquire()
            try:
                return self._send(method, path, account, base=self.order_base_url, **kwargs)
            except RateLimited:
                if refusals >= self.settings.rate_limit_retries:
                    raise
                delay = self.settings.rate_limit_backoff * (2**refusals)
                refusals += 1
                log.warning("upstox 429 on an order write; backing off", extra={"delay": delay})
                self.order_windows.cool_down(account, delay)

    # ------------------------------------------------------------------ mapping

    def _instrument_key(self, symbol: str) -> str:
        return self.instruments.by_symbol(symbol).instrument_key

    def _symbol(self, row: dict) -> str:
        key = row.get("instrument_token") or ""
        ins = self.instruments.by_key(key) if key else None
        if ins is not None:
            return ins.trading_symbol
        sym = row.get("trading_symbol") or row.get("tradingsymbol") or key
        return sym[:-3] if sym.endswith("-EQ") else sym

    def to_order(self, row: dict) -> BrokerOrder:
        qty = int(row.get("quantity") or 0)
        filled = int(row.get("filled_quantity") or 0)
        raw_status = row.get("status")
        tag = row.get("tag") or None
        avg = dec(row.get("average_price"))
        order_type = map_enum(OrderType, row.get("order_type"), OrderType.MARKET)
        return BrokerOrder(
            order_id=str(row.get("order_id")),
            symbol=self._symbol(row),
            side=map_enum(Side, row.get("transaction_type"), Side.BUY),
            type=order_type,
            product=map_product(row.get("product")),
            validity=map_enum(Validity, row.get("validity"), Validity.DAY),
            quantity=qty,
            status=map_status(raw_status, filled, qty),
            filled_quantity=filled,
            average_price=avg if filled and avg else None,
            price=dec(row.get("price")) if order_type in (OrderType.LIMIT, OrderType.SL) else None,
            trigger_price=dec(row.get("trigger_price"))
            if order_type in (OrderType.SL, OrderType.SL_M)
            else None,
            tag=tag,
            client_order_id=tag,
            status_message=row.get("status_message") or raw_status or "",
            placed_at=parse_ts(row.get("order_timestamp")),
            updated_at=parse_ts(row.get("exchange_timestamp")),
            raw_status=str(raw_status or ""),
            raw_product=str(row.get("product") or ""),
        )

    # ------------------------------------------------------------------ orders

    def order_body(self, order: OrderRequest, tag: str) -> dict[str, Any]:
        """The v3 place-order body (Upstox "Place Order V3" request body)."""
        body: dict[str, Any] = {
            "quantity": order.quantity,
            "product": order.product.value,
            "validity": order.validity.value,
            "price": float(order.price) if order.price is not None else 0,
            "tag": tag,
            "instrument_token": self._instrument_key(order.symbol),
            "order_type": order.type.value,
            "transaction_type": order.side.value,
            "disclosed_quantity": 0,
            "trigger_price": float(order.trigger_price) if order.trigger_price is not None else 0,
            "is_amo": bool(order.amo),
            "slice": False,
        }
        if order.type in (OrderType.MARKET, OrderType.SL_M) and self.settings.market_protection is not None:
            body["market_protection"] = float(self.settings.market_protection)
        return body

    def place_order(self, account: str, order: OrderRequest) -> BrokerOrder:
        """Send one placement. Nothing is remembered here: a timeout, connection reset or 5xx raises
        ``BrokerUnavailable`` with ``details.outcome = "unknown"`` and the order service (which committed
        the row before calling) resolves it by looking the tag up in the order book."""
        tag = (order.client_order_id or order.tag or uuid.uuid4().hex)[:TAG_MAX]
        try:
            data = self._write("POST", "/v3/order/place", account, json=self.order_body(order, tag))
        except BrokerUnavailable as exc:
            if exc.details.get("circuit") == "open":
                raise  # nothing was sent
            raise BrokerUnavailable(
                "Upstox did not confirm the order; it may or may not have been accepted. It was not "
                "re-sent: the order book is searched for its tag before anything is sent again.",
                details={"tag": tag, "outcome": "unknown"},
            ) from exc
        ids = (data or {}).get("order_ids") or []
        order_id = str(ids[0]) if ids else str((data or {}).get("order_id", ""))
        return BrokerOrder(
            order_id=order_id,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            product=order.product,
            validity=order.validity,
            quantity=order.quantity,
            status=OrderStatus.PENDING,
            price=order.price,
            trigger_price=order.trigger_price,
            tag=tag,
            client_order_id=order.client_order_id or tag,
            status_message="put order req received",
        )

    def find_by_tag(self, account: str, tag: str) -> BrokerOrder | None:
        for o in self.list_orders(account):
            if o.tag == tag:
                return o
        return None

    def modify_order(self, account: str, order_id: str, changes: OrderModification) -> BrokerOrder:
        current = self.get_order(account, order_id)
        new_type = changes.type or current.type
        merged = replace(
            current,
            quantity=changes.quantity if changes.quantity is not None else current.quantity,
            price=changes.price if changes.price is not None else current.price,
            trigger_price=changes.trigger_price
            if changes.trigger_price is not None
            else current.trigger_price,
            type=new_type,
            validity=changes.validity or current.validity,
        )
        body = {
            "order_id": order_id,
            "quantity": merged.quantity,
            "validity": merged.validity.value,
            "price": float(merged.price or 0) if new_type in (OrderType.LIMIT, OrderType.SL) else 0,
            "order_type": new_type.value,
            "disclosed_quantity": 0,
            "trigger_price": float(merged.trigger_price or 0)
            if new_type in (OrderType.SL, OrderType.SL_M)
            else 0,
        }
        self._write("PUT", "/v3/order/modify", account, json=body)
        return self.get_order(account, order_id)

    def cancel_order(self, account: str, order_id: str) -> BrokerOrder:
        self._write("DELETE", "/v3/order/cancel", account, params={"order_id": order_id})
        return self.get_order(account, order_id)

    def get_order(self, account: str, order_id: str) -> BrokerOrder:
        data = self._get("/v2/order/details", account, {"order_id": order_id})
        if not data:
            raise NotFound(f"Upstox has no order {order_id}.", code="BROKER_ORDER_NOT_FOUND")
        return self.to_order(data)

    def list_orders(self, account: str) -> list[BrokerOrder]:
        return [self.to_order(r) for r in (self._get("/v2/order/retrieve-all", account) or [])]

    def trades(self, account: str) -> list[BrokerTrade]:
        out = []
        for r in self._get("/v2/order/trades/get-trades-for-day", account) or []:
            out.append(
                BrokerTrade(
                    trade_id=str(r.get("trade_id")),
                    order_id=str(r.get("order_id")),
                    symbol=self._symbol(r),
                    side=map_enum(Side, r.get("transaction_type"), Side.BUY),
                    product=map_product(r.get("product")),
                    quantity=int(r.get("quantity") or 0),
                    price=dec(r.get("average_price")),
                    tag=r.get("tag") or None,
                    traded_at=parse_ts(r.get("exchange_timestamp")),
                )
            )
        return out

    # ------------------------------------------------------------------ portfolio

    def positions(self, account: str) -> list[BrokerPosition]:
        out = []
        for r in self._get("/v2/portfolio/short-term-positions", account) or []:
            out.append(
                BrokerPosition(
                    symbol=self._symbol(r),
                    product=map_product(r.get("product") or "I"),
                    quantity=int(r.get("quantity") or 0),
                    average_price=dec(r.get("average_price")),
                    realised_pnl=dec(r.get("realised")),
                    unrealised_pnl=dec(r.get("unrealised")),
                    ltp=dec(r.get("last_price")) if r.get("last_price") is not None else None,
                )
            )
        return out

    def holdings(self, account: str) -> list[Holding]:
        return [
            Holding(
                symbol=self._symbol(r),
                quantity=int(r.get("quantity") or 0),
                average_price=dec(r.get("average_price")),
                ltp=dec(r.get("last_price")) if r.get("last_price") is not None else None,
                product=map_product(r.get("product") or "D"),
            )
            for r in self._get("/v2/portfolio/long-term-holdings", account) or []
        ]

    def funds(self, account: str) -> Funds:
        data = self._get("/v2/user/get-funds-and-margin", account, {"segment": "SEC"}) or {}
        eq = data.get("equity") or {}
        available = dec(eq.get("available_margin"))
        used = dec(eq.get("used_margin"))
        return Funds(available_cash=available, used_margin=used, total=available + used, extra=dict(eq))

    # ------------------------------------------------------------------ portfolio stream feed

    def portfolio_feed_url(self, account: str, update_types: tuple[str, ...] | list[str]) -> str:
        """GET /v2/feed/portfolio-stream-feed/authorize: the one-time ``wss://`` URI of the account's
        portfolio stream (upstox_portfolio_feed.py cites the documentation). Same breaker, retries and
        error mapping as every GET: an expired token raises ``BrokerTokenExpired``."""
        from backend.domain.broker.upstox_portfolio_feed import AUTHORIZE_PATH

        data = self._get(AUTHORIZE_PATH, account, {"update_types": ",".join(update_types)}) or {}
        uri = data.get("authorized_redirect_uri") or data.get("authorizedRedirectUri")
        if not uri:
            raise BrokerUnavailable(
                "Upstox returned no portfolio feed URI.", details={"path": AUTHORIZE_PATH}
            )
        return str(uri)

    # ------------------------------------------------------------------ OAuth (no bearer token)

    def exchange_code(self, code: str, client_id: str, client_secret: str, redirect_uri: str) -> dict:
        """POST /v2/login/authorization/token (form-encoded). Never retried: a code is single use."""
        form = {
            "code": code,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
        }
        url = f"{self.base_url}/v2/login/authorization/token"

        def attempt() -> Any:
            try:
                resp = self.session.post(url, data=form, headers=self._headers(None), timeout=self.timeout)
            except requests.RequestException as exc:
                raise BrokerUnavailable(f"Upstox login is unreachable ({type(exc).__name__}).") from exc
            if resp.status_code == 200:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("access_token"):
                    return body
                raise BrokerUnavailable("Upstox returned an unexpected token response.")
            try:
                handle_response(resp, not_found_code="BROKER_ORDER_NOT_FOUND")
            except BrokerTokenExpired as exc:
                # a 401 here is about the code or the app credentials, not a session
                raise ValidationFailed(
                    f"Upstox refused the authorization code: {exc.message}",
                    details=exc.details,
                    code="BROKER_AUTH_FAILED",
                ) from None
            raise BrokerUnavailable("Upstox returned an unexpected token response.")

        try:
            return self.breaker.call(observed("broker", "POST", "/v2/login/authorization/token", attempt))
        except pybreaker.CircuitBreakerError:
            raise BrokerUnavailable(
                "Upstox is failing; calls are paused by the circuit breaker.", details={"circuit": "open"}
            ) from None

    # ------------------------------------------------------------------ status

    def circuit_state(self) -> dict:
        return {
            "state": self.breaker.current_state,
            "fail_counter": self.breaker.fail_counter,
            "fail_max": self.breaker.fail_max,
            "reset_seconds": self.breaker.reset_timeout,
        }

    def call_wrapper(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (e.g. a market-data call) through this broker's circuit breaker."""
        try:
            return self.breaker.call(fn)
        except pybreaker.CircuitBreakerError:
            raise BrokerUnavailable(
                "Upstox is failing; calls are paused by the circuit breaker.", details={"circuit": "open"}
            ) from None


def parse_ts(value: Any) -> datetime | None:
    """Upstox order times are IST wall-clock strings ``YYYY-MM-DD HH:MM:SS``."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=IST)
    return ts.astimezone(UTC)
