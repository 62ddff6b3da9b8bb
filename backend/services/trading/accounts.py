"""Trading accounts: lazy default paper account, create/list/rename, reset (audited), cash figures."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import String, bindparam, cast, delete, func, literal, select
from sqlalchemy.exc import IntegrityError

from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.extensions import db
from backend.models.trading import (
    LedgerEntry,
    Order,
    Position,
    Trade,
    TradingAccount,
    is_working,
)
from backend.services import audit
from backend.services.trading.common import lock_account

MODES = ("paper", "live")
RESET_CONFIRMATION = "RESET"


def _owned(user_id: int, account_id: int) -> TradingAccount:
    acct = db.session.get(TradingAccount, account_id)
    if acct is None or acct.user_id != user_id or acct.deleted_at is not None:
        # another user's account answers exactly like a missing one
        raise NotFound("Account not found.", {"account_id": account_id}, code="ACCOUNT_NOT_FOUND")
    return acct


def get_account(user: Any, account_id: int) -> TradingAccount:
    return _owned(user.id, account_id)


def _deposit(acct: TradingAccount, amount: Decimal, kind: str, note: str) -> None:
    db.session.add(LedgerEntry(account_id=acct.id, kind=kind, amount=amount, note=note))
    acct.cash = (acct.cash or Decimal(0)) + amount


def default_account(user: Any) -> TradingAccount:
    """The user's default account, created (paper, PAPER_STARTING_CASH) on first use."""
    acct = db.session.scalar(
        select(TradingAccount).where(
            TradingAccount.default_for_user == user.id, TradingAccount.deleted_at.is_(None)
        )
    )
    if acct is not None:
        return acct
    try:
        with db.session.begin_nested():
            acct = TradingAccount(
                user_id=user.id,
                name="Paper",
                mode="paper",
                starting_cash=Decimal(current_app.config["PAPER_STARTING_CASH"]),
                cash=Decimal(0),
                is_default=True,
                default_for_user=user.id,
                risk_overrides={},
                breaker_state={},
            )
            db.session.add(acct)
            db.session.flush()
            _deposit(acct, acct.starting_cash, "deposit", "starting cash")
            db.session.flush()
        db.session.commit()
    except IntegrityError:
        # a concurrent first request created it: use theirs
        db.session.rollback()
        acct = db.session.scalar(select(TradingAccount).where(TradingAccount.default_for_user == user.id))
        if acct is None:
            raise
    return acct


def resolve_account(user: Any, account_id: int | None) -> TradingAccount:
    return default_account(user) if account_id is None else _owned(user.id, account_id)


def list_accounts(user: Any) -> list[TradingAccount]:
    default_account(user)
    return list(
        db.session.scalars(
            select(TradingAccount)
            .where(TradingAccount.user_id == user.id, TradingAccount.deleted_at.is_(None))
            .order_by(TradingAccount.id)
        )
    )


def create_account(
    user: Any, name: str, starting_cash: Decimal | None, make_default: bool = False
) -> TradingAccount:
    """A new paper account. Live accounts are linked by the broker integration, never created here."""
    default_account(user)
    cash = Decimal(current_app.config["PAPER_STARTING_CASH"]) if starting_cash is None else starting_cash
    acct = TradingAccount(
        user_id=user.id,
        name=name,
        mode="paper",
        starting_cash=cash,
        cash=Decimal(0),
        is_default=False,
        risk_overrides={},
        breaker_state={},
    )
    db.session.add(acct)
    db.session.flush()
    _deposit(acct, cash, "deposit", "starting cash")
    if make_default:
        _make_default(user, acct)
    audit.record(
        "trading.account_create",
        target_type="trading_account",
        target_id=acct.id,
        details={"name": name, "starting_cash": str(cash)},
    )
    db.session.commit()
    return acct


def _make_default(user: Any, acct: TradingAccount) -> None:
    for other in db.session.scalars(
        select(TradingAccount).where(TradingAccount.user_id == user.id, TradingAccount.is_default.is_(True))
    ):
        if other.id != acct.id:
            other.is_default = False
            other.default_for_user = None
    db.session.flush()
    acct.is_default = True
    acct.default_for_user = user.id


def update_account(user: Any, account_id: int, name: str | None, is_default: bool | None) -> TradingAccount:
    acct = _owned(user.id, account_id)
    if name is not None:
        acct.name = name
    if is_default is True:
        _make_default(user, acct)
    elif is_default is False and acct.is_default:
        raise ValidationFailed(
            "Make another account the default instead.",
            {"fields": {"is_default": ["The default account cannot be unset; set another one."]}},
        )
    db.session.commit()
    return acct


def reset_account(user: Any, account_id: int, confirm: str, starting_cash: Decimal | None) -> TradingAccount:
    """Wipe orders, trades, positions and the ledger; start again with fresh cash. Audited."""
    if confirm != RESET_CONFIRMATION:
        raise ValidationFailed(
            "Reset needs explicit confirmation.",
            {"fields": {"confirm": [f"Must be exactly {RESET_CONFIRMATION!r}."]}},
        )
    acct = _owned(user.id, account_id)
    if acct.mode != "paper":
        raise Conflict("Only paper accounts can be reset.", code="NOT_A_PAPER_ACCOUNT")
    acct = lock_account(acct.id)
    before = acct.cash
    for model in (LedgerEntry, Trade, Position, Order):
        db.session.execute(delete(model).where(model.account_id == acct.id))
    if starting_cash is not None:
        acct.starting_cash = starting_cash
    acct.cash = Decimal(0)
    acct.breaker_state = {
        k: v for k, v in (acct.breaker_state or {}).items() if k in ("kill_switch", "kill_reason")
    }
    acct.version += 1
    _deposit(acct, acct.starting_cash, "reset", "account reset")
    audit.record(
        "trading.account_reset",
        actor_id=user.id,
        actor_email=getattr(user, "email", None),
        target_type="trading_account",
        target_id=acct.id,
        details={"cash_before": str(before), "starting_cash": str(acct.starting_cash)},
    )
    db.session.commit()
    return acct


@dataclass(frozen=True)
class CashFigures:
    cash: Decimal
    reserved_for_orders: Decimal
    blocked_for_shorts: Decimal
    fno_margin: Decimal = Decimal(0)  # F&O margin held by open option-writing and futures positions
    futures_value: Decimal = Decimal(0)  # net cost basis of futures: booked in cash, not spent

    @property
    def margin_used(self) -> Decimal:
        return self.reserved_for_orders + self.blocked_for_shorts + self.fno_margin

    @property
    def available(self) -> Decimal:
        return self.cash + self.futures_value - self.margin_used


def reserved_cash_query(account_id: Any) -> Any:
    """Cash held by the account's working orders (served by the partial index on working orders)."""
    return select(func.coalesce(func.sum(Order.reserved_cash), 0)).where(
        Order.account_id == account_id, is_working()
    )


def working_orders_query(account_id: Any) -> Any:
    """The account's working orders as one string (``id product side unfilled symbol`` per line), an
    aggregate over the partial index on working orders, so it rides along in the positions statement."""
    sp = literal(" ")
    line = (
        cast(Order.id, String)
        + sp
        + Order.product
        + sp
        + Order.side
        + sp
        + cast(Order.quantity - Order.filled_quantity, String)
        + sp
        + Order.symbol
    )
    return select(func.aggregate_strings(line, "\n")).where(Order.account_id == account_id, is_working())


@dataclass(frozen=True, slots=True)
class WorkingRow:
    order_id: int
    product: str
    side: str
    unfilled: int
    symbol: str


def _parse_working(text: str | None) -> list[WorkingRow]:
    out = []
    for item in (text or "").split("\n"):
        if not item:
            continue
        oid, product, side, unfilled, symbol = item.split(" ", 4)
        out.append(WorkingRow(int(oid), product, side, int(unfilled), symbol))
    return out


@functools.cache
def _positions_and_reserved_statement() -> Any:
    """Built once (``:account``): constructing it per order cost more than executing it."""
    account = bindparam("account")
    anchor = select(
        reserved_cash_query(account).scalar_subquery().label("reserved"),
        working_orders_query(account).scalar_subquery().label("working"),
    ).subquery("r")
    return (
        select(anchor.c.reserved, anchor.c.working, Position)
        .select_from(anchor)
        .outerjoin(Position, Position.account_id == account)
        .order_by(Position.id)
        .execution_options(populate_existing=True)
    )


def positions_reserved_working(acct: TradingAccount) -> tuple[list[Position], Decimal, list[WorkingRow]]:
    """Every position row of the account (freshly loaded), its reserved cash and its working orders,
    in one statement.

    Read after the account lock is taken: a statement that starts after the lock sees every order
    committed by the transaction that held it before."""
    rows = db.session.execute(_positions_and_reserved_statement(), {"account": acct.id}).all()
    return (
        [r[2] for r in rows if r[2] is not None],
        Decimal(rows[0][0] or 0),
        _parse_working(rows[0][1]),
    )


def positions_and_reserved(acct: TradingAccount) -> tuple[list[Position], Decimal]:
    """Every position row of the account (freshly loaded) and its reserved cash, in one statement."""
    rows, reserved, _ = positions_reserved_working(acct)
    return rows, reserved


def cash_figures(
    acct: TradingAccount, positions: list[Position], short_margin_pct: Decimal, reserved: Decimal
) -> CashFigures:
    """Cash, cash held for working orders (``reserved``, from :func:`positions_and_reserved`), and cash
    blocked by open positions.

    A cash-equity short's sale proceeds are in ``cash`` but not spendable; on top of them
    ``short_margin_pct`` of the short's value is blocked. An F&O position that holds margin (written
    options, futures, see backend/domain/risk/margin.py) blocks that margin instead: a written
    option's premium is credited and spendable, as at the broker. A future is booked at its traded
    value (the ledger's fill entry), but only its margin is spent, so that value is added back.
    """
    from backend.services import market_data

    shorts = Decimal(0)
    fno = Decimal(0)
    futures = Decimal(0)
    for p in positions:
        if not p.quantity:
            continue
        held = Decimal(p.margin or 0)
        if held or _is_future(market_data, p.symbol):
            fno += held
            if _is_future(market_data, p.symbol):
                futures += Decimal(p.cost_basis)
        elif p.quantity < 0:
            shorts += -Decimal(p.cost_basis)
    blocked = shorts * (1 + short_margin_pct / 100)
    return CashFigures(Decimal(acct.cash), Decimal(reserved or 0), blocked, fno, futures)


def _is_future(market_data: Any, symbol: str) -> bool:
    ins = market_data.find_instrument(symbol)
    return ins is not None and ins.instrument_type == "FUT"


def ledger_sum(account_id: int) -> Decimal:
    return Decimal(
        db.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
        )
        or 0
    )
