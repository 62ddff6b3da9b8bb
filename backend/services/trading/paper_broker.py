"""The paper broker: the ``Broker`` protocol implemented on our own tables, filled from the live feed.

Every method runs inside the caller's transaction with the account row already locked
(``common.lock_account``); nothing here commits. Fill decisions come from the pure fill model
(``backend.domain.orders.fills.evaluate``); this module only persists them: a trade row per fill, a
``fill`` and a ``charge`` ledger entry, the average-cost position, the order's progress and the
circuit breaker's loss counters.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from backend.domain.accounting import Position as DomainPosition
from backend.domain.accounting import apply_fill as account_fill
from backend.domain.broker.base import BrokerOrder, BrokerPosition, Funds, Holding, OrderModification
from backend.domain.charges import charge_segment as fee_segment
from backend.domain.errors import Conflict, NotFound
from backend.domain.market.calendar import IST
from backend.domain.market.types import Quote
from backend.domain.orders.fills import FillDecision, OrderState, evaluate
from backend.domain.orders.state import is_terminal, transition
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity
from backend.domain.risk.circuit_breaker import new_trip
from backend.extensions import db
from backend.models.base import utcnow
from backend.models.trading import WORKING_STATUSES, LedgerEntry, Order, Position, Trade, TradingAccount
from backend.observability import metrics
from backend.services.trading.common import Events, trading_config, trading_day

PAISA = Decimal("0.01")


def request_of(row: Order) -> OrderRequest:
    return OrderRequest(
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        product=Product(row.product),
        quantity=row.quantity,
        validity=Validity(row.validity),
        price=None if row.price is None else Decimal(row.price),
        trigger_price=None if row.trigger_price is None else Decimal(row.trigger_price),
        tag=row.tag,
        client_order_id=row.client_order_id,
    )


def to_broker_order(row: Order) -> BrokerOrder:
    return BrokerOrder(
        order_id=str(row.id),
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        product=Product(row.product),
        validity=Validity(row.validity),
        quantity=row.quantity,
        status=OrderStatus(row.status),
        filled_quantity=row.filled_quantity,
        average_price=row.average_price,
        price=row.price,
        trigger_price=row.trigger_price,
        tag=row.tag,
        client_order_id=row.client_order_id,
        status_message=row.status_message,
        placed_at=row.created_at,
        updated_at=row.updated_at,
    )


def _instrument_facts(symbol: str) -> tuple[Decimal, int, str]:
    from backend.services import market_data

    ins = market_data.find_instrument(symbol)
    if ins is None:
        return Decimal("0.05"), 1, "EQ"
    return Decimal(ins.tick_size), int(ins.lot_size or 1), fee_segment(ins.segment, ins.instrument_type)


PositionKey = tuple[str, str]  # (symbol, product): intraday and delivery are separate positions


def _position_row(
    account_id: int, symbol: str, product: str, loaded: dict[PositionKey, Position] | None = None
) -> Position:
    """The account's row for ``symbol`` in ``product`` (a new one if none). ``loaded``: every position
    row of the account, already read under this transaction's account lock; a key missing there has
    no row."""
    if loaded is not None:
        row = loaded.get((symbol, product))
    else:
        row = db.session.scalar(
            select(Position)
            .where(Position.account_id == account_id, Position.symbol == symbol, Position.product == product)
            .execution_options(populate_existing=True)
        )
    if row is None:
        row = Position(
            account_id=account_id,
            symbol=symbol,
            quantity=0,
            cost_basis=Decimal(0),
            realised_pnl=Decimal(0),
            product=product,
            margin=Decimal(0),
        )
        db.session.add(row)
        if loaded is not None:
            loaded[(symbol, product)] = row
    return row


class TradeTally:
    """Realised P&L of the closing fills of one decision (a basket), so the circuit breaker counts
    them as ONE trade: a multi-leg exit is one losing (or winning) trade, not one per leg."""

    def __init__(self) -> None:
        self.realised: Decimal | None = None

    def add(self, net: Decimal) -> None:
        self.realised = net if self.realised is None else self.realised + net

    def record(self, acct: TradingAccount, events: Events | None = None) -> None:
        """Count the tally as one trade. A trip it starts (REDUCING or HALTED) is an audit row and,
        through ``events`` (sent after the commit), a ``breaker_tripped`` event to the trader."""
        from backend.services import audit
        from backend.services.trading import risk

        if self.realised is None:
            return
        limits = risk.limits_for(acct)
        before = acct.breaker_state
        st = risk.breaker_for(limits).record_trade(
            risk.breaker_state(acct, limits), self.realised, trading_day()
        )
        risk.save_breaker(acct, st)
        trip = new_trip(before, st)
        if trip is not None:
            payload = {
                "account_id": acct.id,
                "state": str(trip),
                "reason": st.trip_reason,
                "consecutive_losses": st.consecutive_losses,
                "day_realised_pnl": str(st.day_realised_pnl),
                "trading_day": st.trading_day.isoformat() if st.trading_day else None,
                "at": utcnow().isoformat(),
            }
            audit.record(
                "trading.breaker_tripped",
                actor_id=acct.user_id,
                target_type="account",
                target_id=acct.id,
                details=payload,
            )
            if events is not None:
                events.add(acct.user_id, "breaker_tripped", payload)
        self.realised = None


def set_status(row: Order, new: OrderStatus | str, message: str | None = None) -> None:
    """Move ``row`` through the domain state machine (illegal moves raise Conflict)."""
    new = OrderStatus(new)
    if OrderStatus(row.status) is not new or new is OrderStatus.PARTIALLY_FILLED:
        row.status = str(transition(OrderStatus(row.status), new))
    if message is not None:
        row.status_message = message
    if is_terminal(OrderStatus(row.status)):
        row.reserved_cash = Decimal(0)


def _sold_delivery_today(account_id: int, symbol: str, order_id: int | None) -> bool:
    """Has another order of the account already sold ``symbol`` from delivery today (IST)? The DP
    charge is levied once per scrip per day (Upstox help center: "charged once per scrip per day")."""
    start = datetime.combine(trading_day(), time(0), tzinfo=IST).astimezone(UTC)  # stored as UTC
    stmt = select(Trade.id).where(
        Trade.account_id == account_id,
        Trade.symbol == symbol,
        Trade.side == "SELL",
        Trade.product == "D",
        Trade.executed_at >= start,
    )
    if order_id is not None:
        stmt = stmt.where(Trade.order_id != order_id)
    return db.session.scalar(stmt.limit(1)) is not None


_LEDGER_QUEUE = "paper.ledger_queue"  # Session.info key


def queue_ledger(account_id: int, row: Order, trade: Trade, entries: list[tuple[str, Decimal, str]]) -> None:
    """Ledger rows of a fill, written at the flush that gives ``row`` and ``trade`` their ids.

    Nothing reads a ledger row back as an object in the transaction that writes it, so the rows skip
    the ORM's unit of work: one Core executemany with no RETURNING (``write_queued_ledger``) instead
    of tracked objects ordered after their order and trade, about 5% of an order's CPU (issue 13)."""
    now = utcnow()
    queued = db.session.info.setdefault(_LEDGER_QUEUE, [])
    queued.extend((account_id, kind, amount, row, trade, note, now) for kind, amount, note in entries)


def write_queued_ledger(session: Any, _flush_context: Any = None) -> None:
    """``after_flush`` (ids assigned) and ``before_commit`` hook: insert the queued ledger rows."""
    queued = session.info.pop(_LEDGER_QUEUE, None)
    if not queued:
        return
    keys = ("account_id", "kind", "amount", "order", "trade", "note", "created_at")
    rows = [dict(zip(keys, q, strict=True)) for q in queued]
    for r in rows:
        r["order_id"], r["trade_id"] = r.pop("order").id, r.pop("trade").id
    session.connection().execute(insert(LedgerEntry.__table__), rows)


def flush_queued_ledger(session: Any) -> None:
    """``before_commit``: a commit whose flush has nothing left to write still writes the queue."""
    if session.info.get(_LEDGER_QUEUE):
        session.flush()
        write_queued_ledger(session)


def drop_queued_ledger(session: Any, _previous: Any = None) -> None:
    """``after_soft_rollback``: rows of a rolled-back fill are never written."""
    session.info.pop(_LEDGER_QUEUE, None)


def install_ledger_hooks(session: Any) -> None:
    """Bind the queue to the app's session factory, once (``create_app`` runs once per test app)."""
    from sqlalchemy import event

    for name, fn in (
        ("after_flush", write_queued_ledger),
        ("before_commit", flush_queued_ledger),
        ("after_soft_rollback", drop_queued_ledger),
    ):
        if not event.contains(session, name, fn):
            event.listen(session, name, fn)


def fill_charges(
    acct: TradingAccount, row: Order, side: Side, qty: int, price: Decimal, segment: str
) -> Decimal:
    """Charges one fill adds to its order: brokerage is per executed order, so a second fill of the
    same order adds only what the order's contract note grows by (``ChargeSchedule.fill_charges``)."""
    product = Product(row.product)
    before = Decimal(0)
    if row.filled_quantity:
        # the exact traded value so far (the order's average price is rounded)
        before = sum(
            (
                Decimal(q) * Decimal(p)
                for q, p in db.session.execute(
                    select(Trade.quantity, Trade.price).where(Trade.order_id == row.id)
                )
            ),
            Decimal(0),
        )
    dp = (
        side is Side.SELL
        and product is Product.D
        and segment == "EQ"
        # the same answer for every fill of the order, so its fills add up to one contract note
        and not _sold_delivery_today(acct.id, row.symbol, row.id)
    )
    sched = trading_config().charges
    return sched.fill_charges(side, product, before, qty * price, segment, on=trading_day(), dp=dp).total


def move_margin(pos_row: Position, row: Order, before_qty: int, closed: int, opened: int) -> None:
    """F&O margin follows the quantity: a closing fill releases the position's margin pro rata, an
    opening fill brings its share of the margin its order was placed with."""
    held = Decimal(pos_row.margin or 0)
    if closed and before_qty:
        held -= (held * closed / abs(before_qty)).quantize(PAISA)
        if closed >= abs(before_qty):
            held = Decimal(0)
    if opened and row.margin:
        held += (Decimal(row.margin) * opened / row.quantity).quantize(PAISA)
    pos_row.margin = max(held, Decimal(0))


def apply_fill(
    acct: TradingAccount,
    row: Order,
    qty: int,
    price: Decimal,
    segment: str,
    events: Events,
    positions: dict[PositionKey, Position] | None = None,
    tally: TradeTally | None = None,
    charges: Decimal | None = None,
    note: str | None = None,
    charge_note: str = "charges",
) -> Trade:
    """Persist one fill: trade, ledger (value and charges), position, order progress, breaker.

    The fill moves the position of the order's own product (charges follow it). ``tally``: closing
    fills are summed there and counted by the caller as one trade, instead of one trade per fill.
    ``charges``/``note``/``charge_note``: a fill the exchange makes rather than a traded order (expiry
    settlement) carries its own charges (exercise STT) and ledger wording."""
    side = Side(row.side)
    if charges is None:
        charges = fill_charges(acct, row, side, qty, price, segment)
    pos_row = _position_row(acct.id, row.symbol, row.product, positions)
    before = DomainPosition(
        pos_row.quantity or 0, Decimal(pos_row.cost_basis or 0), Decimal(pos_row.realised_pnl or 0)
    )
    result = account_fill(before, side, qty, price)
    trade = Trade(
        account_id=acct.id,
        order=row,
        symbol=row.symbol,
        side=row.side,
        product=row.product,
        quantity=qty,
        price=price,
        charges=charges,
        realised_pnl=result.realised,
    )
    db.session.add(trade)
    metrics.record_fill("paper")
    if not events.deferred:
        db.session.flush()  # the fill event's payload carries the trade id
    value = -(qty * price) if side is Side.BUY else qty * price
    ledger = [("fill", value, note or f"{row.side} {qty} {row.symbol} @ {price}")]
    if charges:
        ledger.append(("charge", -charges, charge_note))
    queue_ledger(acct.id, row, trade, ledger)
    acct.cash = Decimal(acct.cash) + value - charges

    move_margin(pos_row, row, before.qty, result.closed_qty, result.opened_qty)
    pos_row.quantity = result.position.qty
    pos_row.cost_basis = result.position.cost_basis
    pos_row.realised_pnl = result.position.realised_pnl
    if result.position.qty == 0 or result.opened_qty and result.closed_qty:
        pos_row.stops = None  # a flat or flipped position keeps no stale exits

    # order progress: weighted average price, cash still held for the unfilled rest
    prev_filled = row.filled_quantity
    row.filled_quantity = prev_filled + qty
    prev_value = Decimal(row.average_price or 0) * prev_filled
    row.average_price = ((prev_value + price * qty) / row.filled_quantity).quantize(Decimal("0.0001"))
    remaining = row.quantity - row.filled_quantity
    row.reserved_cash = (
        (Decimal(row.reserved_cash) * remaining / (remaining + qty)).quantize(PAISA)
        if remaining > 0
        else Decimal(0)
    )

    if result.closed_qty:
        own = tally if tally is not None else TradeTally()
        own.add(result.realised - charges)
        if tally is None:
            own.record(acct, events)
    events.fill(row.user_id, trade)
    events.position(row.user_id, pos_row)
    return trade


def apply_decision(
    acct: TradingAccount,
    row: Order,
    decision: FillDecision,
    segment: str,
    events: Events,
    positions: dict[PositionKey, Position] | None = None,
    tally: TradeTally | None = None,
) -> None:
    for fill in decision.fills:
        apply_fill(acct, row, fill.qty, fill.price, segment, events, positions, tally)
    new = decision.new_status
    if new is OrderStatus.PARTIALLY_FILLED and not decision.fills and row.status == "partially_filled":
        return  # nothing happened
    if OrderStatus(row.status) is not new or decision.fills:
        set_status(row, new, decision.reason)
        events.order(row)


def work_order(
    acct: TradingAccount,
    row: Order,
    update: Any,
    events: Events,
    positions: dict[PositionKey, Position] | None = None,
    tally: TradeTally | None = None,
) -> None:
    """Evaluate one working order against one market update (quote or tick) and persist the result.

    ``positions``: all of the account's position rows by (symbol, product), loaded under the current
    lock (optional). ``tally``: see :func:`apply_fill`."""
    if row.status not in WORKING_STATUSES:
        return
    tick_size, lot, segment = _instrument_facts(row.symbol)
    state = OrderState(request_of(row), OrderStatus(row.status), row.filled_quantity, tick_size, lot)
    decision = evaluate(state, update, trading_config().fills)
    if not decision.fills and OrderStatus(row.status) is decision.new_status:
        return
    apply_decision(acct, row, decision, segment, events, positions, tally)


class PaperBroker:
    """``Broker`` for paper accounts. ``quotes`` are the prices already fetched for this request."""

    name = "paper"

    def __init__(self, quotes: dict[str, Quote] | None = None, events: Events | None = None) -> None:
        self.quotes = dict(quotes or {})
        self.events = events or Events()
        # Filled in by the order service: every position row of the account read under the lock, by
        # (symbol, product). Not named ``positions``: that is the Broker protocol's method.
        self.loaded_positions: dict[PositionKey, Position] | None = None
        # Set by a basket: its closing fills count as one trade for the circuit breaker.
        self.tally: TradeTally | None = None

    # -- helpers
    def _account(self, account: str) -> TradingAccount:
        acct = db.session.get(TradingAccount, int(account))
        if acct is None or acct.mode != "paper":
            raise NotFound("Paper account not found.", code="ACCOUNT_NOT_FOUND")
        return acct

    def _order(self, account: str, order_id: str) -> Order:
        row = db.session.get(Order, int(order_id), populate_existing=True)
        if row is None or row.account_id != int(account):
            raise NotFound("Order not found.", {"order_id": order_id}, code="ORDER_NOT_FOUND")
        return row

    def _quote(self, symbol: str) -> Quote:
        q = self.quotes.get(symbol)
        if q is None:
            from backend.services import market_data

            q = market_data.quotes([symbol])[0]
            self.quotes[symbol] = q
        return q

    # -- Broker protocol
    def place_order(self, account: str, order: OrderRequest) -> BrokerOrder:
        """Work a recorded order (found by its client order id): stops wait, others trade at the quote."""
        acct = self._account(account)
        row = db.session.scalar(
            select(Order).where(Order.account_id == acct.id, Order.client_order_id == order.client_order_id)
        )
        if row is None:
            raise NotFound("Order was not recorded before placement.", code="ORDER_NOT_FOUND")
        self.place_recorded(acct, row, order.is_stop)
        return to_broker_order(row)

    def place_recorded(self, acct: TradingAccount, row: Order, is_stop: bool) -> None:
        """Work an order row the caller added in this transaction (it may not be flushed yet)."""
        if is_stop:
            set_status(row, OrderStatus.TRIGGER_PENDING, "awaiting_trigger")
            self.events.order(row)
        else:
            work_order(acct, row, self._quote(row.symbol), self.events, self.loaded_positions, self.tally)
            if row.status == "pending":  # limit not crossed / beyond protection: rest on the book
                set_status(row, OrderStatus.OPEN, row.status_message or "open")
                self.events.order(row)

    def modify_order(self, account: str, order_id: str, changes: OrderModification) -> BrokerOrder:
        row = self._order(account, order_id)
        if row.status not in ("open", "trigger_pending", "partially_filled"):
            raise Conflict(
                "Only a working order can be modified.", {"status": row.status}, code="ORDER_NOT_MODIFIABLE"
            )
        if changes.quantity is not None:
            row.quantity = changes.quantity
        if changes.price is not None:
            row.price = changes.price
        if changes.trigger_price is not None:
            row.trigger_price = changes.trigger_price
        row.status_message = "modified"
        self.events.order(row)
        return to_broker_order(row)

    def cancel_order(self, account: str, order_id: str) -> BrokerOrder:
        row = self._order(account, order_id)
        if row.status not in WORKING_STATUSES:
            raise Conflict(
                "The order is no longer working.", {"status": row.status}, code="ORDER_NOT_CANCELLABLE"
            )
        set_status(row, OrderStatus.CANCELLED, "cancelled by user")
        self.events.order(row)
        return to_broker_order(row)

    def get_order(self, account: str, order_id: str) -> BrokerOrder:
        return to_broker_order(self._order(account, order_id))

    def list_orders(self, account: str) -> list[BrokerOrder]:
        rows = db.session.scalars(select(Order).where(Order.account_id == int(account)).order_by(Order.id))
        return [to_broker_order(r) for r in rows]

    def positions(self, account: str) -> list[BrokerPosition]:
        rows = db.session.scalars(
            select(Position)
            .where(Position.account_id == int(account), Position.quantity != 0)
            .order_by(Position.symbol, Position.product)
        )
        out = []
        for p in rows.all():
            avg = (Decimal(p.cost_basis) / p.quantity).quantize(Decimal("0.0001"))
            out.append(BrokerPosition(p.symbol, Product(p.product), p.quantity, avg, Decimal(p.realised_pnl)))
        return out

    def holdings(self, account: str) -> list[Holding]:
        return [
            Holding(p.symbol, p.quantity, p.average_price)
            for p in self.positions(account)
            if p.product is Product.D and p.quantity > 0
        ]

    def funds(self, account: str) -> Funds:
        from backend.services.trading.accounts import cash_figures, positions_and_reserved
        from backend.services.trading.risk import limits_for

        acct = self._account(account)
        rows, reserved = positions_and_reserved(acct)
        figs = cash_figures(acct, rows, limits_for(acct).short_margin_pct, reserved)
        return Funds(available_cash=figs.available, used_margin=figs.margin_used, total=figs.cash)
