"""Strategy use cases: the factory catalog, options analysis and basket placement, saved strategies.

Saved strategies are versioned: version 1 on create, +1 on every update and on the soft delete,
each state kept in ``saved_strategy_versions``. Orders go through :class:`TradingGateway`, a thin
adapter over ``backend.services.trading.orders`` (the real paper broker, in tests too).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.strategies import StrategyFactory
from backend.domain.strategies.options import DEFAULT_RATE, OptionsStrategy, StrategyLeg
from backend.extensions import db
from backend.models.market import Instrument
from backend.models.strategies import SavedStrategy, SavedStrategyVersion
from backend.models.user import User
from backend.services import audit, market_data
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- trading adapter


class TradingGateway:
    """Adapter to the paper-trading service (``backend.services.trading.orders``).

    ``place_basket`` is the service's atomic basket: one transaction, one risk decision for the
    combined effect of every leg, every leg accepted or none.
    """

    def place_order(self, user: Any, order: dict[str, Any]) -> Any:
        from backend.services.trading import orders

        placed, _status = orders.place_order(user, order)
        return placed

    def place_basket(
        self, user: Any, legs: list[dict[str, Any]], account_id: int | None = None, tag: str | None = None
    ) -> list[Any]:
        from backend.services.trading import orders

        return orders.place_basket(user, legs, account_id=account_id, tag=tag)


def gateway(app: Flask | None = None) -> TradingGateway:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.setdefault("trading_gateway", TradingGateway())


def set_gateway(app: Flask, gw: TradingGateway | None) -> None:
    if gw is None:
        app.extensions.pop("trading_gateway", None)
    else:
        app.extensions["trading_gateway"] = gw


# --------------------------------------------------------------------------- catalog and options


def catalog(kind: str | None = None) -> list[dict[str, Any]]:
    return StrategyFactory.catalog(kind)


def _options_strategy(name: str, params: dict[str, Any]) -> OptionsStrategy:
    cls = StrategyFactory.get(name)
    if cls.kind != "options":
        raise ValidationFailed(
            f"{name!r} is a {cls.kind} strategy, not an options strategy",
            {"name": ["not an options strategy"]},
        )
    if (
        isinstance(params, dict)
        and params.get("expiry") is None
        and isinstance(params.get("underlying"), str)
    ):
        # As GET /option-chain: no expiry means the nearest listed one (so an example never goes stale).
        listed = market_data.expiries(params["underlying"])
        if listed:
            params = {**params, "expiry": listed[0].isoformat()}
    strategy = StrategyFactory.create(name, params)
    assert isinstance(strategy, OptionsStrategy)
    return strategy


def analyze(name: str, params: dict[str, Any], as_of: datetime | None = None, rate: float | None = None):
    """Legs from the live chain of ``params['underlying']`` / ``params['expiry']`` and their analysis."""
    strategy = _options_strategy(name, params)
    chain = market_data.option_chain(strategy.params["underlying"], strategy.params["expiry"])
    from backend.services.trading.common import trading_config

    analysis = strategy.analyse(
        chain.rows,
        chain.spot,
        chain.lot_size,
        as_of=as_of,
        rate=DEFAULT_RATE if rate is None else rate,
        margin=trading_config().margin,  # the model placement blocks with: analyze == place
    )
    out = analysis.to_dict()
    out["lot_size"] = chain.lot_size
    return out, analysis, chain


def _leg_symbol(underlying: str, expiry: date, leg: StrategyLeg) -> str:
    if leg.instrument == "EQ":
        return market_data.get_instrument(underlying).trading_symbol
    symbol = db.session.scalar(
        select(Instrument.trading_symbol).where(
            Instrument.underlying == underlying.upper(),
            Instrument.expiry == expiry,
            Instrument.instrument_type == leg.instrument,
            Instrument.strike == leg.strike,
        )
    )
    if symbol is None:
        raise NotFound(
            f"no listed {underlying} {expiry} {leg.strike} {leg.instrument} contract",
            {"strike": str(leg.strike), "instrument": leg.instrument},
            code="UNKNOWN_SYMBOL",
        )
    return symbol


def place(user: User, name: str, params: dict[str, Any], account_id: int | None, product: str = "D") -> dict:
    """Place every leg as MARKET orders in one basket: all legs are accepted or none is placed."""
    _, analysis, chain = analyze(name, params)
    legs = [
        {
            "account_id": account_id,
            "symbol": _leg_symbol(chain.underlying, chain.expiry, leg),
            "side": leg.side,
            "type": "MARKET",
            "product": product,
            "quantity": leg.quantity,
            "tag": f"options:{name}"[:64],
        }
        for leg in analysis.legs
    ]
    orders = gateway().place_basket(user, legs, account_id=account_id, tag=f"options:{name}"[:64])
    audit.record(
        "strategy.options.place",
        target_type="strategy",
        target_id=name,
        details={"legs": [{k: leg[k] for k in ("symbol", "side", "quantity")} for leg in legs]},
    )
    db.session.commit()
    return {
        "strategy": name,
        "legs": legs,
        "order_ids": [getattr(o, "id", None) for o in orders],
        "analysis": analysis.to_dict(),
    }


# --------------------------------------------------------------------------- saved strategies

FIELDS = ("name", "strategy", "params", "symbols", "interval", "account_id", "quantity")


def _snapshot(row: SavedStrategy) -> dict[str, Any]:
    return {k: getattr(row, k) for k in FIELDS}


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, (date, datetime)) else v)
        for k, v in params.items()
    }


def _check(user: User, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if "strategy" in out or "params" in out:
        loaded = StrategyFactory.validate(out["strategy"], out.get("params") or {})
        out["params"] = _json_params(loaded)
    if out.get("symbols"):
        out["symbols"] = [i.trading_symbol for i in market_data.resolve(out["symbols"])]
    if out.get("account_id") is not None:
        from backend.services.trading.accounts import get_account

        get_account(user, out["account_id"])
    return out


def _version(row: SavedStrategy, change: str) -> None:
    db.session.add(
        SavedStrategyVersion(strategy_id=row.id, version=row.version, snapshot=_snapshot(row), change=change)
    )


def create_saved(user: User, data: dict[str, Any]) -> SavedStrategy:
    data = _check(user, data)
    row = SavedStrategy(user_id=user.id, version=1, **{k: data[k] for k in FIELDS if k in data})
    db.session.add(row)
    db.session.flush()
    _version(row, "created")
    audit.record("strategy.create", target_type="saved_strategy", target_id=row.id)
    db.session.commit()
    return row


def get_saved(user: User, strategy_id: int, include_deleted: bool = False) -> SavedStrategy:
    row = db.session.get(SavedStrategy, strategy_id)
    if row is None or row.user_id != user.id or (row.is_deleted and not include_deleted):
        raise NotFound(f"strategy {strategy_id} not found", code="STRATEGY_NOT_FOUND")
    return row


def list_saved(user: User, limit: int, cursor: dict | None, include_deleted: bool = False) -> Page:
    stmt = select(SavedStrategy).where(SavedStrategy.user_id == user.id)
    if not include_deleted:
        stmt = stmt.where(SavedStrategy.deleted_at.is_(None))
    return keyset_page(stmt, SavedStrategy.id, limit, cursor)


def update_saved(user: User, strategy_id: int, changes: dict[str, Any]) -> SavedStrategy:
    row = get_saved(user, strategy_id)
    merged = {**_snapshot(row), **changes}
    wanted = dict(changes)
    if "strategy" in changes or "params" in changes:
        wanted["strategy"], wanted["params"] = merged["strategy"], merged["params"]
    checked = _check(user, wanted)
    changed = {k: v for k, v in checked.items() if getattr(row, k) != v}
    if not changed:
        return row
    for k, v in changed.items():
        setattr(row, k, v)
    row.version += 1
    _version(row, "updated")
    audit.record(
        "strategy.update", target_type="saved_strategy", target_id=row.id, details={"fields": sorted(changed)}
    )
    db.session.commit()
    return row


def delete_saved(user: User, strategy_id: int) -> None:
    row = get_saved(user, strategy_id)
    from backend.services import deployments

    deployments.stop_for_strategy(row.id, reason="strategy deleted")
    row.soft_delete()
    row.version += 1
    _version(row, "deleted")
    audit.record("strategy.delete", target_type="saved_strategy", target_id=row.id)
    db.session.commit()


def versions(user: User, strategy_id: int) -> list[SavedStrategyVersion]:
    row = get_saved(user, strategy_id, include_deleted=True)
    return list(
        db.session.scalars(
            select(SavedStrategyVersion)
            .where(SavedStrategyVersion.strategy_id == row.id)
            .order_by(SavedStrategyVersion.version)
        )
    )


def init_app(app: Flask) -> None:
    """Start-up wiring of this domain: strategy plugins, job recovery, deployments."""
    from backend.services import deployments, jobs

    folder = app.config.get("STRATEGY_PLUGINS_DIR")
    loaded = StrategyFactory.load_plugins(folder=folder)
    if loaded:
        log.info("strategy plugins loaded: %s", ", ".join(loaded))
    jobs.init_app(app)
    deployments.init_app(app)
