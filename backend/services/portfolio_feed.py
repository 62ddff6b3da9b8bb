"""The Upstox portfolio stream, applied to the local book the moment an update arrives.

One ``PortfolioFeed`` (backend/domain/broker/upstox_portfolio_feed.py) per live account with an active
Upstox connection, its token read from the encrypted token store on every authorization. Each update:

* **order**: the local order is found by the broker's order id, else by its tag (our
  ``client_order_id`` or ``oid:<id>``, so an update that overtakes the placement's own answer still
  lands on the right row), else it is an order placed outside this platform (the Upstox app) and is
  created as reconciliation creates it (``broker.external_order``: no idempotency key, the broker's id
  and figures) and audited. Status moves only through the order state machine
  (``live.apply_broker_order``). When the filled quantity grows, the day's trades are read and each
  new one recorded once (``broker_trade_id``), then positions are refreshed from the broker.
* **position / holding**: the account's positions are refreshed from the broker's documented REST
  reads (short-term positions plus long-term holdings, as reconciliation does): the feed's own
  position payload is not relied on for figures.

Every change emits the same Socket.IO events as a paper order (``order_update``, ``fill``,
``position_update``), after its commit. A duplicate update changes nothing and emits nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import or_, select

from backend.domain.broker.upstox_portfolio_feed import FeedSettings, PortfolioFeed, PortfolioUpdate
from backend.domain.errors import BrokerTokenExpired, DomainError
from backend.extensions import db, token_store
from backend.models.broker import BrokerConnection
from backend.models.trading import Order, TradingAccount
from backend.security.token_store import TokenUnreadable
from backend.services.trading.common import Events, settle_numerics

log = logging.getLogger(__name__)

_EXT = "portfolio_feeds"


# --------------------------------------------------------------------------- applying one update


def _find_order(acct: TradingAccount, broker_order_id: str, tag: str | None) -> Order | None:
    conds = [Order.broker_order_id == broker_order_id]
    if tag:
        conds.append(Order.client_order_id == tag)
        if tag.startswith("oid:") and tag[4:].isdigit():
            conds.append(Order.id == int(tag[4:]))
    rows = db.session.scalars(
        select(Order)
        .where(Order.account_id == acct.id, or_(*conds))
        .order_by(Order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for row in rows:  # the broker's id is the strongest match
        if row.broker_order_id == broker_order_id:
            return row
    return rows[0] if rows else None


def _refresh_positions(acct: TradingAccount, broker: Any, events: Events) -> None:
    from backend.services.broker import _remote_positions, sync_positions

    try:
        remote = _remote_positions(broker, str(acct.id))
    except DomainError as exc:
        log.warning(
            "positions unavailable for a feed update", extra={"account_id": acct.id, "code": exc.code}
        )
        return  # the order update still commits; reconciliation brings the positions
    _, changed = sync_positions(acct, remote)
    for p in changed:
        events.position(acct.user_id, p)


def apply_order_update(acct: TradingAccount, payload: dict[str, Any]) -> Order:
    """Apply one order update to the local book (one transaction); returns the local order."""
    from backend.services import audit
    from backend.services.broker import broker_for_account, external_order, record_trades
    from backend.services.trading.orders.live import apply_broker_order

    broker = broker_for_account(acct)
    remote = broker.to_order(payload)
    events = Events()
    row = _find_order(acct, remote.order_id, remote.tag)
    before_filled = row.filled_quantity if row is not None else 0
    if row is None:
        row = external_order(acct, remote)
        db.session.add(row)
        db.session.flush()
        audit.record(
            "broker.feed_external_order",
            actor_id=acct.user_id,
            target_type="order",
            target_id=f"{acct.id}:{remote.order_id}",
            details={"broker_order_id": remote.order_id, "status": remote.status.value, "tag": remote.tag},
        )
        changed = True
    else:
        changed = bool(apply_broker_order(row, remote))
    fills = []
    if row.filled_quantity > before_filled:
        try:
            fills = record_trades(acct, broker.trades(str(acct.id)), {remote.order_id: row})
        except DomainError as exc:
            # the order's new status is kept; its trades are recorded by the next update or by
            # reconciliation (broker_trade_id makes either safe)
            log.warning("trades unavailable for a feed update", extra={"order_id": row.id, "code": exc.code})
    if changed:
        settle_numerics(row)
        db.session.flush()
        events.order(row)
    for t in fills:
        settle_numerics(t)  # the payload shows the stored 990.00, not the broker's float 990.0
        db.session.flush()
        events.fill(acct.user_id, t)
    if fills or (changed and row.filled_quantity > before_filled):
        _refresh_positions(acct, broker, events)
    events.render()
    db.session.commit()
    events.send()
    return row


def apply_update(account_id: int, update: PortfolioUpdate) -> None:
    """Route one parsed update (inside an app context)."""
    from backend.services.broker import broker_for_account

    acct = db.session.get(TradingAccount, account_id)
    if acct is None or acct.mode != "live" or acct.deleted_at is not None:
        return
    if update.kind == "order":
        apply_order_update(acct, update.payload)
        return
    if update.kind in ("position", "holding"):
        events = Events()
        _refresh_positions(acct, broker_for_account(acct), events)
        events.render()
        db.session.commit()
        events.send()


# --------------------------------------------------------------------------- one feed per account


def _connection(account_id: int) -> BrokerConnection | None:
    from backend.services.broker import BROKER

    return db.session.scalar(
        select(BrokerConnection).where(
            BrokerConnection.account_id == account_id,
            BrokerConnection.broker == BROKER,
            BrokerConnection.status == "active",
        )
    )


def token_fingerprint(account_id: int) -> str | None:
    """A digest of the account's current token (None: no live token), never the token itself. It
    changes on a fresh login and becomes None when the token expires at 03:30 IST."""
    from backend.services.broker import BROKER

    conn = _connection(account_id)
    if conn is None:
        return None
    try:
        entry = token_store.get(BROKER, conn.user_id, conn.account_id)
    except TokenUnreadable:
        return None
    return None if entry is None else hashlib.sha256(entry.token.encode()).hexdigest()


def build_feed(app: Flask, account_id: int, connect: Any = None) -> PortfolioFeed:
    settings = FeedSettings.from_config(app.config)

    def in_app(fn: Any) -> Any:
        def run(*args: Any) -> Any:
            with app.app_context():
                try:
                    return fn(*args)
                except Exception:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()

        return run

    def authorize() -> str:
        from backend.services.broker import live_broker

        return live_broker(app).portfolio_feed_url(str(account_id), settings.update_types)

    return PortfolioFeed(
        name=f"portfolio-{account_id}",
        authorize=in_app(authorize),
        on_update=in_app(lambda update: apply_update(account_id, update)),
        credential=in_app(lambda: token_fingerprint(account_id)),
        is_auth_error=lambda exc: isinstance(exc, BrokerTokenExpired),
        settings=settings,
        connect=connect,
    )


# compare-and-extend / compare-and-delete: a process only ever renews or frees its own claim
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass
class FeedOwnership:
    """Which process runs an account's feed: with Redis, one claim per account shared by every worker
    and machine (renewed at each sync, expiring ``ttl`` after its owner died); without Redis, this
    process. A Redis failure fails open: a second socket costs a connection, never correctness (the
    updates are idempotent)."""

    client: Any
    ttl_seconds: float
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    @staticmethod
    def key(account_id: int) -> str:
        return f"tp:portfolio-feed:{account_id}"

    def claim(self, account_id: int) -> bool:
        if self.client is None:
            return True
        try:
            return bool(
                self.client.eval(_CLAIM, 1, self.key(account_id), self.owner, int(self.ttl_seconds * 1000))
            )
        except Exception:  # noqa: BLE001 - Redis down: run the feed here rather than nowhere
            log.warning("portfolio feed claim failed; running it in this process", exc_info=True)
            return True

    def release(self, account_id: int) -> None:
        if self.client is None:
            return
        try:
            self.client.eval(_RELEASE, 1, self.key(account_id), self.owner)
        except Exception:  # noqa: BLE001 - the claim expires by itself
            log.warning("portfolio feed release failed", exc_info=True)


def _ownership(app: Flask) -> FeedOwnership:
    from backend.extensions import redis_store

    interval = float(app.config.get("UPSTOX_PORTFOLIO_FEED_SYNC_SECONDS", 30.0))
    return FeedOwnership(redis_store.client, ttl_seconds=max(10.0, 3 * interval))


@dataclass
class FeedManager:
    """The feeds of this process: one per live account with an active Upstox connection whose
    ``FeedOwnership`` claim this process holds."""

    app: Flask
    feeds: dict[int, PortfolioFeed] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_event: threading.Event = field(default_factory=threading.Event)
    ownership: FeedOwnership | None = None

    def __post_init__(self) -> None:
        if self.ownership is None:
            self.ownership = _ownership(self.app)

    def sync(self) -> dict[int, PortfolioFeed]:
        """Start a feed for each newly connected live account; stop those whose connection went."""
        from backend.services.broker import BROKER

        with self.app.app_context():
            try:
                wanted = set(
                    db.session.scalars(
                        select(BrokerConnection.account_id)
                        .join(TradingAccount, TradingAccount.id == BrokerConnection.account_id)
                        .where(
                            BrokerConnection.broker == BROKER,
                            BrokerConnection.status == "active",
                            TradingAccount.mode == "live",
                            TradingAccount.deleted_at.is_(None),
                        )
                    )
                )
            finally:
                db.session.remove()
        owned = {a for a in wanted if self.ownership.claim(a)}
        with self.lock:
            for account_id in list(self.feeds):
                if account_id not in owned:
                    self.feeds.pop(account_id).stop()
                    if account_id not in wanted:
                        self.ownership.release(account_id)
            for account_id in sorted(owned - set(self.feeds)):
                feed = build_feed(self.app, account_id)
                self.feeds[account_id] = feed
                feed.start()
            return dict(self.feeds)

    def run(self, interval: float) -> None:
        while not self.stop_event.is_set():
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - the manager outlives a database outage
                log.exception("portfolio feed sync failed")
            self.stop_event.wait(interval)

    def stop(self) -> None:
        self.stop_event.set()
        with self.lock:
            for account_id, feed in self.feeds.items():
                feed.stop()
                self.ownership.release(account_id)
            self.feeds.clear()

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                str(a): {**f.stats.as_dict(), "ignored": f.ignored} for a, f in sorted(self.feeds.items())
            }


def manager(app: Flask | None = None) -> FeedManager:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    mgr = app.extensions.get(_EXT)
    if mgr is None:
        mgr = app.extensions.setdefault(_EXT, FeedManager(app))
    return mgr


def start(app: Flask) -> FeedManager:
    """Run the feeds in the background, re-checking connections every
    ``UPSTOX_PORTFOLIO_FEED_SYNC_SECONDS`` (a fresh login gets its feed without a restart)."""
    mgr = manager(app)
    interval = float(app.config.get("UPSTOX_PORTFOLIO_FEED_SYNC_SECONDS", 30.0))
    threading.Thread(target=mgr.run, args=(interval,), daemon=True, name="portfolio-feeds").start()
    return mgr
