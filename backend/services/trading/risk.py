"""Risk services: effective limits per account, breaker state, account and global kill switches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from backend.domain.risk import BreakerState, RiskLimits, TradingCircuitBreaker, merge_limits
from backend.domain.risk.limits import coerce_limit
from backend.extensions import db
from backend.models.base import utcnow
from backend.models.trading import TradingAccount, TradingSettings
from backend.observability import metrics
from backend.services import audit
from backend.services.trading.accounts import get_account
from backend.services.trading.common import lock_account, trading_config, trading_day

_SETTINGS_ID = 1


def default_limits() -> RiskLimits:
    return trading_config().risk


def limits_for(acct: TradingAccount) -> RiskLimits:
    # stored overrides were vetted when saved (tighten-only unless an admin set them)
    return merge_limits(default_limits(), acct.risk_overrides or {}, by_admin=True)


def breaker_for(limits: RiskLimits) -> TradingCircuitBreaker:
    return TradingCircuitBreaker(limits.max_consecutive_losses, limits.daily_loss_limit)


def breaker_state(acct: TradingAccount, limits: RiskLimits | None = None) -> BreakerState:
    """Persisted breaker state rolled to today (a new day resets counters and automatic trips).
    ``limits``: the account's :func:`limits_for`, when the caller has them already."""
    st = BreakerState.from_dict(acct.breaker_state or {})
    return breaker_for(limits or limits_for(acct)).roll_day(st, trading_day())


def save_breaker(acct: TradingAccount, st: BreakerState) -> None:
    metrics.record_breaker_change(acct.breaker_state, new := st.to_dict())
    acct.breaker_state = new


# --------------------------------------------------------------------------- global kill switch


def _settings_row(lock: bool = False) -> TradingSettings | None:
    stmt = select(TradingSettings).where(TradingSettings.id == _SETTINGS_ID)
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def global_kill_subquery() -> Any:
    """The global kill flag as a scalar subquery (NULL when never set), to read it within another
    statement instead of a round trip of its own."""
    return select(TradingSettings.global_kill).where(TradingSettings.id == _SETTINGS_ID).scalar_subquery()


def get_global_kill_switch() -> bool:
    """True when an admin has halted trading for every account."""
    row = _settings_row()
    return bool(row and row.global_kill)


def global_kill_status() -> dict[str, Any]:
    row = _settings_row()
    return {
        "on": bool(row and row.global_kill),
        "reason": row.kill_reason if row else "",
        "updated_by": row.updated_by if row else None,
        "updated_at": row.updated_at if row else None,
    }


def set_global_kill_switch(actor: Any, on: bool, reason: str = "") -> dict[str, Any]:
    """Engage or release the platform-wide kill switch (admins). Audited."""
    row = _settings_row(lock=True)
    if row is None:
        row = TradingSettings(id=_SETTINGS_ID)
        db.session.add(row)
    metrics.record_global_kill(bool(row.global_kill), bool(on))
    row.global_kill = bool(on)
    row.kill_reason = reason if on else ""
    row.updated_by = getattr(actor, "id", None)
    audit.record(
        "trading.global_kill_switch",
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None),
        target_type="trading_settings",
        target_id=_SETTINGS_ID,
        details={"on": bool(on), "reason": reason},
    )
    db.session.commit()
    return global_kill_status()


# --------------------------------------------------------------------------- per-account risk


def risk_view(acct: TradingAccount) -> dict[str, Any]:
    limits = limits_for(acct)
    st = breaker_state(acct, limits)
    global_kill = get_global_kill_switch()
    return {
        "account_id": acct.id,
        "defaults": default_limits().to_dict(),
        "overrides": dict(acct.risk_overrides or {}),
        "limits": limits.to_dict(),
        "trading_state": str(TradingCircuitBreaker.effective_state(st, global_kill)),
        "breaker": st.to_dict(),
        "global_kill": global_kill,
    }


def get_risk(user: Any, account_id: int) -> dict[str, Any]:
    return risk_view(get_account(user, account_id))


def update_risk(user: Any, account_id: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` (None removes one). Owners may only tighten; admins may loosen. Audited."""
    acct = get_account(user, account_id)
    merged = dict(acct.risk_overrides or {})
    for name, value in overrides.items():
        if value is None and name != "allowed_symbols":
            merged.pop(name, None)
        else:
            coerce_limit(name, value)  # ValidationFailed names the field
            merged[name] = value
    is_admin = getattr(user, "role", None) == "admin"
    merge_limits(default_limits(), merged, by_admin=is_admin)  # raises PermissionDenied on loosening
    acct = lock_account(acct.id)
    acct.risk_overrides = merged
    audit.record(
        "trading.risk_update",
        target_type="trading_account",
        target_id=acct.id,
        details={
            "overrides": {k: (str(v) if not isinstance(v, (list, bool)) else v) for k, v in merged.items()}
        },
    )
    db.session.commit()
    return risk_view(acct)


def set_kill_switch(user: Any, account_id: int, on: bool, reason: str = "") -> dict[str, Any]:
    acct = get_account(user, account_id)
    acct = lock_account(acct.id)
    st = breaker_state(acct)
    st = TradingCircuitBreaker.kill(st, reason or "manual") if on else TradingCircuitBreaker.release(st)
    save_breaker(acct, st)
    audit.record(
        "trading.kill_switch",
        target_type="trading_account",
        target_id=acct.id,
        details={"on": bool(on), "reason": reason},
    )
    db.session.commit()
    return risk_view(acct)


def reset_trip(actor: Any, account_id: int) -> dict[str, Any]:
    """Admin override of today's automatic trip (REDUCING/HALTED by losses).

    The trader was told of the trip (``breaker_tripped``), so they are told of its reset too: a
    ``breaker_reset`` event after the commit, with the state the account trades in now (still HALTED
    while its own or the global kill switch is on)."""
    from backend.services.trading.common import Events

    acct = lock_account(account_id)
    before = breaker_state(acct)
    st = TradingCircuitBreaker.reset_trip(before)
    save_breaker(acct, st)
    audit.record(
        "trading.breaker_reset",
        actor_id=getattr(actor, "id", None),
        target_type="trading_account",
        target_id=account_id,
        details={"was": str(before.tripped), "reason": before.trip_reason},
    )
    events = Events()
    events.add(
        acct.user_id,
        "breaker_reset",
        {
            "account_id": acct.id,
            "was": str(before.tripped),
            "reason": before.trip_reason,
            "state": str(TradingCircuitBreaker.effective_state(st, get_global_kill_switch())),
            "by": "admin",
            "trading_day": st.trading_day.isoformat() if st.trading_day else None,
            "at": utcnow().isoformat(),
        },
    )
    db.session.commit()
    events.send()
    return risk_view(acct)
