"""Broker connectivity use cases: Upstox OAuth, connections, the live adapter, reconciliation, status.

* ``init_app`` binds the token store, registers the ``broker`` readiness check and (outside tests)
  reconciles live accounts in the background at start-up.
* ``live_broker()`` is the process-wide ``UpstoxBroker`` (one circuit breaker and one order token
  bucket per process); ``broker_for_account(acct)`` refuses anything but a live account, so a paper
  account never reaches the Upstox client.
* Tokens live only in the encrypted token store (``backend.extensions.token_store``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select, update

from backend.domain.broker.order_limits import (
    UPSTOX_ORDER_WINDOWS,
    FallbackOrderWindows,
    LocalOrderWindows,
    OrderWindows,
    RedisOrderWindows,
)
from backend.domain.broker.upstox import UpstoxBroker, UpstoxSettings
from backend.domain.errors import (
    AuthenticationFailed,
    BrokerTokenExpired,
    BrokerUnavailable,
    Conflict,
    DomainError,
    NotFound,
    ServiceUnavailable,
)
from backend.domain.market.calendar import IST
from backend.domain.orders.types import OrderStatus
from backend.domain.upstox_http import RELOGIN_HINT
from backend.extensions import db, redis_store, token_store
from backend.lifecycle import on_shutdown
from backend.models.broker import BrokerConnection, BrokerOAuthState
from backend.models.trading import WORKING_STATUSES, Order, Position, TradingAccount
from backend.observability import metrics
from backend.security.token_store import TokenEntry, TokenUnreadable

log = logging.getLogger(__name__)

BROKER = "upstox"
SCOPES = ("orders", "portfolio", "market-data")
_EXT = "broker_runtime"


def _now() -> datetime:
    return datetime.now(UTC)


def next_token_expiry(issued_at: datetime) -> datetime:
    """Upstox tokens end at the next 03:30 Asia/Kolkata after issue (02:30 -> 03:30 the same day)."""
    local = issued_at.astimezone(IST)
    cutoff = local.replace(hour=3, minute=30, second=0, microsecond=0)
    if cutoff <= local:
        cutoff += timedelta(days=1)
    return cutoff.astimezone(UTC)


# --------------------------------------------------------------------------- runtime (per app)


@dataclass
class _Runtime:
    broker: UpstoxBroker | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    resolver_stop: threading.Event | None = None


def _runtime(app: Flask | None = None) -> _Runtime:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    rt = app.extensions.get(_EXT)
    if rt is None:
        rt = app.extensions.setdefault(_EXT, _Runtime())
    return rt


def init_app(app: Flask) -> None:
    from backend.ops import register_readiness_check

    token_store.init_app(app)
    _runtime(app)
    register_readiness_check("broker", lambda: _readiness(app))
    # The trading service resolves live accounts through this factory (paper accounts never ask it).
    from backend.services.trading.orders import set_live_broker_factory

    set_live_broker_factory(app, broker_for_account)
    if app.config.get("BROKER_RECONCILE_ON_START") and not app.testing:
        threading.Thread(
            target=_reconcile_on_start, args=(app,), daemon=True, name="broker-reconcile"
        ).start()
    if not app.testing:
        stop = start_resolver(app)
        on_shutdown(app, "live-order resolver", stop.set)
    if (
        app.config.get("UPSTOX_PORTFOLIO_FEED_ENABLED")
        and app.config.get("BACKGROUND_WORK", True)  # never for a one-shot command (flask db upgrade)
        and not app.testing
    ):
        from backend.services import portfolio_feed

        feeds = portfolio_feed.start(app)
        on_shutdown(app, "portfolio feeds", feeds.stop)


def start_resolver(app: Flask) -> threading.Event:
    """Settle ``unknown`` live orders in the background (backend/services/trading/orders/live.py)."""
    from backend.services.trading.orders import live

    rt = _runtime(app)
    if rt.resolver_stop is None:
        rt.resolver_stop = threading.Event()
        interval = float(app.config.get("UPSTOX_RESOLVER_INTERVAL_SECONDS", 15.0))
        threading.Thread(
            target=live.run_resolver,
            args=(app, interval, rt.resolver_stop),
            daemon=True,
            name="live-order-resolver",
        ).start()
    return rt.resolver_stop


def reset_runtime(app: Flask | None = None) -> None:
    """Drop the adapter so the next call rebuilds it from ``app.config`` (tests, config reloads)."""
    _runtime(app).broker = None


def _token_for_account(account: str) -> str:
    conn = db.session.scalar(
        select(BrokerConnection).where(
            BrokerConnection.account_id == int(account),
            BrokerConnection.broker == BROKER,
            BrokerConnection.status == "active",
        )
    )
    if conn is None:
        raise BrokerTokenExpired(
            "This live account has no active Upstox connection; connect Upstox again.",
            details={"relogin": RELOGIN_HINT, "account_id": int(account)},
        )
    return token_store.require(BROKER, conn.user_id, conn.account_id).token


def live_broker(app: Flask | None = None) -> UpstoxBroker:
    """The process-wide Upstox adapter (built lazily from config)."""
    rt = _runtime(app)
    if rt.broker is None:
        with rt.lock:
            if rt.broker is None:
                cfg = (app or current_app).config
                rt.broker = UpstoxBroker(
                    token_provider=_token_for_account,
                    instruments=_instruments(),
                    settings=UpstoxSettings.from_config(cfg),
                    order_windows=order_windows(),
                )
    return rt.broker


def order_windows() -> OrderWindows:
    """Per-user order-write windows: in Redis (shared by every worker and machine) when configured,
    else in-process (exact for one worker)."""
    local = LocalOrderWindows(UPSTOX_ORDER_WINDOWS)
    if redis_store.client is None:
        return local
    return FallbackOrderWindows(RedisOrderWindows(redis_store.client, UPSTOX_ORDER_WINDOWS), local, log)


class _Instruments:
    """Symbol <-> instrument key through the market-data service (its DB-backed registry)."""

    def by_symbol(self, symbol: str) -> Any:
        from backend.services import market_data

        return market_data.get_instrument(symbol)

    def by_key(self, instrument_key: str) -> Any | None:
        from backend.models.market import Instrument
        from backend.services import market_data

        row = db.session.scalar(select(Instrument).where(Instrument.instrument_key == instrument_key))
        return None if row is None else market_data.to_domain(row)


def _instruments() -> _Instruments:
    return _Instruments()


def broker_for_account(acct: TradingAccount) -> UpstoxBroker:
    """The broker for a *live* account. Paper accounts are refused before any client exists."""
    if acct.mode != "live":
        raise Conflict(
            "Paper accounts are filled by the paper engine, never by a broker.", code="NOT_A_LIVE_ACCOUNT"
        )
    return live_broker()


# --------------------------------------------------------------------------- market data hooks


def _connection_token(conn: BrokerConnection | None) -> str | None:
    if conn is None:
        return None
    try:
        entry = token_store.get(BROKER, conn.user_id, conn.account_id)
    except TokenUnreadable:
        return None
    return None if entry is None else entry.token


def market_data_token_provider(app: Flask | None = None) -> Callable[[], str]:
    """Token for the Upstox market-data provider, resolved on every call (a fresh login is picked up):

    1. ``UPSTOX_ACCESS_TOKEN``, only when an operator sets it as an explicit override;
    2. inside a request, the caller's own active Upstox connection;
    3. the one connection an admin designated for the shared feed (``market_data_feed``).

    Never another user's connection unless an admin designated it."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]

    def provide() -> str:
        override = app.config.get("UPSTOX_ACCESS_TOKEN")
        if override:
            return override
        from flask import g, has_request_context

        user = g.get("current_user") if has_request_context() else None
        with app.app_context():
            if user is not None:
                own = db.session.scalar(
                    select(BrokerConnection)
                    .where(
                        BrokerConnection.user_id == user.id,
                        BrokerConnection.broker == BROKER,
                        BrokerConnection.status == "active",
                    )
                    .order_by(BrokerConnection.updated_at.desc(), BrokerConnection.id.desc())
                )
                if (token := _connection_token(own)) is not None:
                    return token
            shared = db.session.scalar(
                select(BrokerConnection).where(
                    BrokerConnection.market_data_feed.is_(True), BrokerConnection.status == "active"
                )
            )
            if (token := _connection_token(shared)) is not None:
                return token
        raise BrokerTokenExpired(
            "No Upstox session for market data: connect Upstox, or an admin designates a connection "
            "for the shared feed (PUT /api/v1/broker/market-data-connection).",
            details={"relogin": RELOGIN_HINT},
        )

    return provide


def market_data_call_wrapper(app: Flask | None = None) -> Callable[[Callable[[], Any]], Any]:
    """Market-data calls through the broker's circuit breaker and the same retries as its GETs.

    The provider reports transport failures as ``ServiceUnavailable``; they are counted as broker
    failures here so the one breaker sees market data and orders alike."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

    from backend.domain.errors import RateLimited

    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cfg = app.config

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, BrokerUnavailable):
            return exc.details.get("circuit") != "open"
        return isinstance(exc, RateLimited)

    def wrap(fn: Callable[[], Any]) -> Any:
        def counted() -> Any:
            try:
                return fn()
            except BrokerUnavailable:
                raise
            except ServiceUnavailable as exc:
                raise BrokerUnavailable(exc.message, details=exc.details) from exc

        initial = float(cfg.get("UPSTOX_RETRY_WAIT_INITIAL", 0.2))
        retrying = Retrying(
            stop=stop_after_attempt(max(1, int(cfg.get("UPSTOX_RETRY_ATTEMPTS", 3)))),
            wait=wait_exponential_jitter(
                multiplier=initial, max=float(cfg.get("UPSTOX_RETRY_WAIT_MAX", 2.0)), jitter=initial
            ),
            retry=retry_if_exception(transient),
            reraise=True,
        )
        return retrying(live_broker(app).call_wrapper, counted)

    return wrap


def designate_market_data_connection(admin: Any, connection_id: int | None) -> BrokerConnection | None:
    """Admin: the connection whose token feeds the shared market data (None: no shared feed)."""
    from backend.services import audit

    conn = None
    if connection_id is not None:
        conn = db.session.get(BrokerConnection, connection_id)
        if conn is None or conn.status != "active":
            raise NotFound(
                "No active connection with this id.",
                {"connection_id": connection_id},
                code="CONNECTION_NOT_FOUND",
            )
    db.session.execute(
        update(BrokerConnection)
        .where(BrokerConnection.market_data_feed.is_(True))
        .values(market_data_feed=False)
    )
    if conn is not None:
        conn.market_data_feed = True
    audit.record(
        "broker.market_data_connection",
        actor_id=admin.id,
        actor_email=getattr(admin, "email", None),
        target_type="broker_connection",
        target_id=connection_id,
        details={"connection_id": connection_id},
    )
    db.session.commit()
    if conn is not None:
        conn.token_status = token_status(conn)
    return conn


# --------------------------------------------------------------------------- OAuth


def _oauth_config() -> dict[str, str]:
    cfg = current_app.config
    missing = [
        k for k in ("UPSTOX_CLIENT_ID", "UPSTOX_CLIENT_SECRET", "UPSTOX_REDIRECT_URI") if not cfg.get(k)
    ]
    if missing:
        raise ServiceUnavailable(
            f"Upstox is not configured on this server ({', '.join(missing)} missing).",
            code="BROKER_NOT_CONFIGURED",
        )
    return {
        "client_id": cfg["UPSTOX_CLIENT_ID"],
        "client_secret": cfg["UPSTOX_CLIENT_SECRET"],
        "redirect_uri": cfg["UPSTOX_REDIRECT_URI"],
        "base_url": cfg.get("UPSTOX_API_BASE_URL") or "https://api.upstox.com",
    }


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def authorize(user: Any) -> dict:
    """A fresh authorization URL; its random ``state`` is stored (hashed) and bound to ``user``."""
    oc = _oauth_config()
    state = secrets.token_urlsafe(32)
    now = _now()
    ttl = int(current_app.config.get("UPSTOX_OAUTH_STATE_TTL_SECONDS", 600))
    db.session.add(
        BrokerOAuthState(
            state_hash=_hash_state(state),
            user_id=user.id,
            broker=BROKER,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": oc["client_id"],
            "redirect_uri": oc["redirect_uri"],
            "state": state,
        }
    )
    return {
        "authorization_url": f"{oc['base_url'].rstrip('/')}/v2/login/authorization/dialog?{query}",
        "state": state,
        "expires_at": now + timedelta(seconds=ttl),
    }


def _consume_state(state: str, caller: Any | None) -> int:
    """Mark the state used (atomically, once) and return the user it is bound to."""
    bad = AuthenticationFailed(
        "The login state is unknown, expired or already used; start again from /broker/upstox/authorize.",
        code="OAUTH_STATE_INVALID",
    )
    if not state:
        raise bad
    h = _hash_state(state)
    row = db.session.scalar(select(BrokerOAuthState).where(BrokerOAuthState.state_hash == h))
    if row is None or (caller is not None and row.user_id != caller.id):
        raise bad
    now = _now()
    res = db.session.execute(
        update(BrokerOAuthState)
        .where(
            BrokerOAuthState.id == row.id,
            BrokerOAuthState.used_at.is_(None),
            BrokerOAuthState.expires_at > now,
        )
        .values(used_at=now)
    )
    db.session.commit()  # consumed even if the code exchange below fails: a state is single use
    if res.rowcount != 1:
        raise bad
    return row.user_id


def complete_callback(code: str, state: str, caller: Any | None = None) -> BrokerConnection:
    """Verify + consume ``state``, exchange ``code``, store the token, link a live account."""
    from backend.models import User
    from backend.services import audit

    oc = _oauth_config()
    user_id = _consume_state(state, caller)
    user = db.session.get(User, user_id)
    if user is None or not getattr(user, "is_active", True):
        raise AuthenticationFailed(
            "The user who started this login no longer exists.", code="OAUTH_STATE_INVALID"
        )
    body = live_broker().exchange_code(code, oc["client_id"], oc["client_secret"], oc["redirect_uri"])
    broker_user_id = str(body.get("user_id") or "")
    issued = _now()
    expires = next_token_expiry(issued)
    conn = db.session.scalar(
        select(BrokerConnection).where(
            BrokerConnection.user_id == user.id,
            BrokerConnection.broker == BROKER,
            BrokerConnection.broker_user_id == broker_user_id,
        )
    )
    acct = db.session.get(TradingAccount, conn.account_id) if conn and conn.account_id else None
    if acct is None or acct.deleted_at is not None:
        acct = TradingAccount(
            user_id=user.id,
            name=f"Upstox {broker_user_id}"[:100],
            mode="live",
            starting_cash=Decimal(0),
            cash=Decimal(0),
            is_default=False,
            risk_overrides={},
            breaker_state={},
        )
        db.session.add(acct)
        db.session.flush()
    if conn is None:
        conn = BrokerConnection(user_id=user.id, broker=BROKER, broker_user_id=broker_user_id)
        db.session.add(conn)
    conn.account_id = acct.id
    conn.broker_user_name = str(body.get("user_name") or "")[:128]
    conn.status = "active"
    conn.revoked_at = None
    conn.token_expires_at = expires
    db.session.flush()
    audit.record(
        "broker.connect",
        actor_id=user.id,
        actor_email=getattr(user, "email", None),
        target_type="broker_connection",
        target_id=conn.id,
        details={"broker": BROKER, "account_id": acct.id, "broker_user_id": broker_user_id},
    )
    db.session.commit()
    token_store.put(
        TokenEntry(
            token=body["access_token"],
            broker=BROKER,
            user_id=user.id,
            account_id=acct.id,
            issued_at=issued,
            expires_at=expires,
            scopes=SCOPES,
            meta={"broker_user_id": broker_user_id},
        )
    )
    return conn


# --------------------------------------------------------------------------- connections


def token_status(conn: BrokerConnection) -> str:
    if conn.status != "active":
        return "revoked"
    try:
        entry = token_store.get(BROKER, conn.user_id, conn.account_id)
    except TokenUnreadable:
        return "unreadable"
    return "valid" if entry is not None else "expired"


def list_connections(user: Any) -> list[BrokerConnection]:
    rows = db.session.scalars(
        select(BrokerConnection).where(BrokerConnection.user_id == user.id).order_by(BrokerConnection.id)
    ).all()
    for r in rows:
        r.token_status = token_status(r)  # transient attribute for the response
    return list(rows)


def revoke_connection(user: Any, connection_id: int) -> None:
    from backend.services import audit

    conn = db.session.get(BrokerConnection, connection_id)
    if conn is None or conn.user_id != user.id:
        raise NotFound("Connection not found.", {"connection_id": connection_id}, code="CONNECTION_NOT_FOUND")
    token_store.delete(BROKER, conn.user_id, conn.account_id)
    if conn.status != "revoked":
        conn.status = "revoked"
        conn.revoked_at = _now()
        audit.record(
            "broker.revoke",
            actor_id=user.id,
            actor_email=getattr(user, "email", None),
            target_type="broker_connection",
            target_id=conn.id,
            details={"broker": conn.broker, "account_id": conn.account_id},
        )
    db.session.commit()


# --------------------------------------------------------------------------- reconciliation


@dataclass
class Difference:
    account_id: int
    kind: str  # order | position | trade
    key: str  # broker order id / symbol
    field: str
    ours: Any
    broker: Any
    action: str  # updated | created | closed

    def as_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "kind": self.kind,
            "key": self.key,
            "field": self.field,
            "ours": None if self.ours is None else str(self.ours),
            "broker": None if self.broker is None else str(self.broker),
            "action": self.action,
        }


@dataclass
class ReconcileReport:
    accounts: list[int] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def _remote_positions(
    broker: UpstoxBroker, account: str
) -> dict[str, dict[str, tuple[int, Decimal, Decimal]]]:
    """The broker's positions per symbol and product: short-term positions PLUS long-term holdings.

    (quantity, cost, realised) per product. A delivery holding from an earlier session is in
    ``long-term-holdings`` only, so reading short-term positions alone would zero it."""
    out: dict[str, dict[str, tuple[int, Decimal, Decimal]]] = {}

    def add(symbol: str, product: str, qty: int, avg: Decimal, realised: Decimal) -> None:
        q, c, r = out.setdefault(symbol, {}).get(product, (0, Decimal(0), Decimal(0)))
        out[symbol][product] = (q + qty, c + (avg * qty), r + realised)

    for rp in broker.positions(account):
        add(rp.symbol, rp.product.value, rp.quantity, rp.average_price, rp.realised_pnl)
    for h in broker.holdings(account):
        add(h.symbol, h.product.value, h.quantity, h.average_price, Decimal(0))
    return out


def external_order(acct: TradingAccount, r: Any) -> Order:
    """A local row for an order the broker holds and we never placed (the Upstox app, web, another
    tool): no idempotency key, the broker's id, status and figures as they are."""
    return Order(
        account_id=acct.id,
        user_id=acct.user_id,
        broker_order_id=r.order_id,
        client_order_id=None,
        symbol=r.symbol,
        side=r.side.value,
        type=r.type.value,
        product=r.product.value,
        broker_product=r.raw_product[:16] or None,
        broker_status=r.raw_status[:64] or None,
        validity=r.validity.value,
        quantity=r.quantity,
        filled_quantity=r.filled_quantity,
        price=r.price,
        trigger_price=r.trigger_price,
        average_price=r.average_price,
        status=r.status.value,
        status_message=r.status_message,
        reject_reasons=[],
        tag=r.tag,
    )


def record_trades(
    acct: TradingAccount, remote_trades: list[Any], by_broker_id: dict[str, Order]
) -> list[Any]:
    """Add each broker fill of a known order once (``broker_trade_id``); returns the new Trade rows."""
    from backend.models.trading import Trade

    db.session.flush()
    known = set(
        db.session.scalars(
            select(Trade.broker_trade_id).where(
                Trade.account_id == acct.id, Trade.broker_trade_id.is_not(None)
            )
        )
    )
    added = []
    for t in remote_trades:
        order = by_broker_id.get(t.order_id)
        if order is None or t.trade_id in known:
            continue
        trade = Trade(
            account_id=acct.id,
            order_id=order.id,
            symbol=t.symbol,
            side=t.side.value,
            product=t.product.value,
            quantity=t.quantity,
            price=t.price,
            charges=Decimal(0),  # the broker's contract note holds the live charges
            realised_pnl=Decimal(0),
            executed_at=t.traded_at or _now(),
            broker_trade_id=t.trade_id,
        )
        db.session.add(trade)
        known.add(t.trade_id)
        metrics.record_fill("live")
        added.append(trade)
    return added


def sync_positions(
    acct: TradingAccount, remote_positions: dict[str, dict[str, tuple[int, Decimal, Decimal]]]
) -> tuple[list[Difference], list[Position]]:
    """Take the broker's positions (``_remote_positions``) onto ours; returns the differences and the
    position rows that changed."""
    diffs: list[Difference] = []
    changed: list[Position] = []
    # one position per symbol and product (intraday and delivery are separate, as at the broker)
    positions = {
        (p.symbol, p.product): p
        for p in db.session.scalars(select(Position).where(Position.account_id == acct.id))
    }
    seen = set()
    remote = [
        (symbol, product, qty, cost.quantize(Decimal("0.0001")), realised)
        for symbol, per_product in remote_positions.items()
        for product, (qty, cost, realised) in per_product.items()
    ]
    for symbol, product, qty, cost, realised in remote:
        seen.add((symbol, product))
        mine = positions.get((symbol, product))
        if mine is None:
            if qty == 0:
                continue
            fresh = Position(
                account_id=acct.id,
                symbol=symbol,
                product=product,
                quantity=qty,
                cost_basis=cost,
                realised_pnl=realised,
            )
            db.session.add(fresh)
            changed.append(fresh)
            diffs.append(Difference(acct.id, "position", symbol, "quantity", None, qty, "created"))
            continue
        if mine.quantity != qty:
            diffs.append(Difference(acct.id, "position", symbol, "quantity", mine.quantity, qty, "updated"))
            mine.quantity = qty
            changed.append(mine)
        if Decimal(mine.cost_basis) != cost:
            diffs.append(
                Difference(acct.id, "position", symbol, "cost_basis", mine.cost_basis, cost, "updated")
            )
            mine.cost_basis = cost
            if mine not in changed:
                changed.append(mine)
    for (sym, product), mine in positions.items():
        if (sym, product) not in seen and mine.quantity != 0:
            diffs.append(Difference(acct.id, "position", sym, "quantity", mine.quantity, 0, "closed"))
            mine.quantity = 0
            mine.cost_basis = Decimal(0)
            changed.append(mine)

    return diffs, changed


def _reconcile_account(acct: TradingAccount, broker: UpstoxBroker, report: ReconcileReport) -> None:
    from backend.domain.orders.state import can_transition
    from backend.models.trading import UNRESOLVED_STATUSES
    from backend.services import audit
    from backend.services.trading.orders.live import apply_broker_order

    account = str(acct.id)
    remote_orders = broker.list_orders(account)
    remote_positions = _remote_positions(broker, account)
    remote_trades = broker.trades(account)
    diffs: list[Difference] = []

    ours = db.session.scalars(select(Order).where(Order.account_id == acct.id)).all()
    by_broker_id = {o.broker_order_id: o for o in ours if o.broker_order_id}
    by_tag = {o.client_order_id: o for o in ours if o.client_order_id}
    for r in remote_orders:
        row = by_broker_id.get(r.order_id) or (by_tag.get(r.tag) if r.tag else None)
        if row is None:
            row = external_order(acct, r)
            db.session.add(row)
            by_broker_id[r.order_id] = row
            diffs.append(Difference(acct.id, "order", r.order_id, "*", None, r.status.value, "created"))
            continue
        # status moves through the order state machine; the broker's other figures are the truth
        for name, mine, theirs in apply_broker_order(row, r):
            diffs.append(Difference(acct.id, "order", r.order_id, name, mine, theirs, "updated"))
    remote_ids = {r.order_id for r in remote_orders}
    for o in ours:
        # our working order unknown to the broker (never reached it, or cleared): not working any more.
        # Unresolved (submitting / unknown) rows are the resolver's: it looks them up by tag.
        if (
            o.status in WORKING_STATUSES
            and o.status not in UNRESOLVED_STATUSES
            and o.broker_order_id
            and o.broker_order_id not in remote_ids
            and can_transition(OrderStatus(o.status), OrderStatus.CANCELLED)
        ):
            diffs.append(
                Difference(acct.id, "order", o.broker_order_id, "status", o.status, "missing", "updated")
            )
            o.status = OrderStatus.CANCELLED.value
            o.status_message = "not found at the broker during reconciliation"
            o.reserved_cash = Decimal(0)

    diffs.extend(sync_positions(acct, remote_positions)[0])

    # the day's trades: each broker fill recorded once against its order
    for t in record_trades(acct, remote_trades, by_broker_id):
        diffs.append(Difference(acct.id, "trade", t.broker_trade_id, "*", None, t.quantity, "created"))

    for d in diffs:
        audit.record(
            "broker.reconcile_difference",
            actor_id=acct.user_id,
            target_type=d.kind,
            target_id=f"{acct.id}:{d.key}",
            details=d.as_dict(),
        )
    conn = db.session.scalar(select(BrokerConnection).where(BrokerConnection.account_id == acct.id))
    if conn is not None:
        conn.last_reconciled_at = _now()
    db.session.commit()
    report.differences.extend(diffs)


def reconcile(user: Any | None = None, account_id: int | None = None) -> ReconcileReport:
    """Compare live accounts (of ``user``, or all) with Upstox; fix our view; audit each difference.

    Paper accounts are never reconciled (and never reach the Upstox client)."""
    stmt = select(TradingAccount).where(TradingAccount.deleted_at.is_(None))
    if user is not None:
        stmt = stmt.where(TradingAccount.user_id == user.id)
    if account_id is not None:
        stmt = stmt.where(TradingAccount.id == account_id)
    accounts = db.session.scalars(stmt.order_by(TradingAccount.id)).all()
    if account_id is not None and not accounts:
        raise NotFound("Account not found.", {"account_id": account_id}, code="ACCOUNT_NOT_FOUND")
    report = ReconcileReport()
    for acct in accounts:
        if acct.mode != "live":
            if account_id is not None:
                raise Conflict("Only live accounts are reconciled with a broker.", code="NOT_A_LIVE_ACCOUNT")
            continue
        report.accounts.append(acct.id)
        try:
            _reconcile_account(acct, broker_for_account(acct), report)
        except DomainError as exc:
            db.session.rollback()
            report.errors.append({"account_id": acct.id, "code": exc.code, "message": exc.message})
    return report


def _reconcile_on_start(app: Flask) -> None:
    with app.app_context():
        try:
            report = reconcile()
            log.info(
                "broker reconciliation on start",
                extra={"accounts": len(report.accounts), "differences": len(report.differences)},
            )
        except Exception:  # noqa: BLE001 - start-up must survive a broker outage
            log.exception("broker reconciliation on start failed")
        finally:
            db.session.remove()


# --------------------------------------------------------------------------- status


def broker_status(app: Flask | None = None) -> dict:
    """Circuit and connection figures for the admin page and readiness."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    rt = _runtime(app)
    if rt.broker is not None:
        circuit = rt.broker.circuit_state()
    else:
        circuit = {
            "state": "closed",
            "fail_counter": 0,
            "fail_max": app.config.get("UPSTOX_BREAKER_FAIL_MAX"),
            "reset_seconds": app.config.get("UPSTOX_BREAKER_RESET_SECONDS"),
        }
    configured = all(
        app.config.get(k) for k in ("UPSTOX_CLIENT_ID", "UPSTOX_CLIENT_SECRET", "UPSTOX_REDIRECT_URI")
    )
    out = {"broker": BROKER, "configured": configured, "circuit": circuit}
    feeds = app.extensions.get("portfolio_feeds")
    if feeds is not None:
        out["portfolio_feeds"] = feeds.status()  # this process's feeds: state and counters per account
    return out


def _readiness(app: Flask) -> tuple[bool, dict]:
    # An open circuit degrades live trading only; paper trading and the API stay up, so readiness
    # reports the state without failing the instance.
    status = broker_status(app)
    return True, {"circuit": status["circuit"]["state"], "configured": status["configured"]}


# --------------------------------------------------------------------------- CLI


@click.group("tokens", cls=AppGroup)
def tokens_cli() -> None:
    """Encrypted broker tokens."""


@tokens_cli.command("rotate-key")
def rotate_key_cmd() -> None:
    """Re-encrypt every stored broker token under the newest TOKEN_ENCRYPTION_KEYS key."""
    report = token_store.rotate_key()
    click.echo(f"re-encrypted {report.rotated} token(s) under the newest key ({token_store.backend_name})")
    if report.unreadable:
        click.echo(
            f"{len(report.unreadable)} token(s) could not be decrypted with any configured key "
            "(their key was removed); the users must connect Upstox again:"
        )
        for key in report.unreadable:
            click.echo(f"  {key}")


@tokens_cli.command("purge-expired")
def purge_expired_cmd() -> None:
    """Delete expired tokens from the database backend (Redis expires them itself)."""
    click.echo(f"purged {token_store.purge_expired()} expired token(s)")
