"""Alert rule kinds.

Every kind is a small class with the same interface (``parse`` / ``to_params`` / ``initial_armed`` /
``evaluate``) and is looked up in ``RULE_KINDS``; engines never branch on the kind name.

A kind only answers "is the condition true right now?" (``Observation.condition``, or ``None`` when
there is not enough data to tell). The edge-triggered "fire once per crossing" logic lives in one
place (``engine.apply_observation``) so all kinds share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from backend.domain.errors import ValidationFailed

if TYPE_CHECKING:
    from backend.domain.alerts.series import SymbolSeries
    from backend.domain.market.types import Tick

#: Upper bounds keep per-symbol history (and per-tick work) bounded.
MAX_WINDOW_SECONDS = 7 * 24 * 3600
MAX_TICK_WINDOW = 1000
MAX_INDICATOR_PERIOD = 200
MAX_TIMEFRAME_SECONDS = 86400
DEFAULT_TIMEFRAME_SECONDS = 60


class Observation(NamedTuple):
    condition: bool
    value: Any
    message: str
    payload: dict


@dataclass(frozen=True, slots=True)
class PnlEvent:
    user_id: Any
    symbol: str  # "*" for the whole portfolio
    pnl: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class SignalEvent:
    strategy: str
    symbol: str
    signal: str
    ts: datetime
    user_id: Any = None  # None: delivered to every user's rule on that strategy/symbol
    payload: dict = field(default_factory=dict, hash=False, compare=False)


# --------------------------------------------------------------------------- param helpers


MAX_INTEGER_DIGITS = 14
MAX_PLACES = 4


def _dec(params: Mapping[str, Any], name: str, *, positive: bool = False, default: Any = None) -> Decimal:
    raw = params.get(name, default)
    if raw is None:
        raise ValidationFailed(f"param '{name}' is required", {"field": name})
    if isinstance(raw, bool):
        raise ValidationFailed(f"param '{name}' must be a number", {"field": name})
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"param '{name}' must be a number", {"field": name}) from exc
    if not value.is_finite():
        raise ValidationFailed(f"param '{name}' must be finite", {"field": name})
    # Prices are Numeric(18, 4) everywhere else: a level no price can reach could never fire.
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationFailed(f"param '{name}' must be below 1e{MAX_INTEGER_DIGITS}", {"field": name})
    if value != 0 and value.adjusted() < -MAX_PLACES:
        raise ValidationFailed(f"param '{name}' has more than {MAX_PLACES} decimal places", {"field": name})
    if positive and value <= 0:
        raise ValidationFailed(f"param '{name}' must be > 0", {"field": name})
    return value


def _int(params: Mapping[str, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    raw = params.get(name, default)
    if raw is None or isinstance(raw, bool):
        raise ValidationFailed(f"param '{name}' is required", {"field": name})
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"param '{name}' must be an integer", {"field": name}) from exc
    if value != raw and not (isinstance(raw, str) and raw.strip().lstrip("-").isdigit()):
        raise ValidationFailed(f"param '{name}' must be an integer", {"field": name})
    if not lo <= value <= hi:
        raise ValidationFailed(f"param '{name}' must be between {lo} and {hi}", {"field": name})
    return value


def _choice(
    params: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    raw = params.get(name, default)
    if raw not in choices:
        raise ValidationFailed(f"param '{name}' must be one of {', '.join(choices)}", {"field": name})
    return raw


def _known(params: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(params) - allowed)
    if extra:
        raise ValidationFailed(f"unknown param(s): {', '.join(extra)}", {"fields": extra})


# --------------------------------------------------------------------------- kinds


class RuleKind:
    """Common interface. Subclasses are immutable, validated parameter holders."""

    kind: ClassVar[str]
    source: ClassVar[str] = "tick"  # which feed drives it: "tick", "pnl" or "signal"
    #: For level kinds the indexed engine keeps the rule in a sorted array; "above" means the
    #: condition is ``price > level``, "below" means ``price < level``.
    level_side: ClassVar[str | None] = None
    #: Discrete-event kinds (signals) have no "false" state between events: re-arm after each one.
    rearm_after_event: ClassVar[bool] = False

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> RuleKind:
        raise NotImplementedError

    def to_params(self) -> dict:
        raise NotImplementedError

    def initial_armed(self, last_price: Decimal | None) -> bool:
        """Armed state of a new rule. Plain conditions start armed; crossings need to see the far side."""
        return True

    #: Indicator kinds only change on completed bars of this timeframe; engines evaluate them then only.
    bar_timeframe: int | None = None

    def require(self, series: SymbolSeries) -> None:
        """Make ``series`` keep the history/indicator state this rule needs (shared, never shrinks)."""

    def evaluate(self, event: Any, series: SymbolSeries | None) -> Observation | None:
        raise NotImplementedError


class _LevelKind(RuleKind):
    __slots__ = ("level",)
    word: ClassVar[str]

    def __init__(self, level: Decimal):
        self.level = level

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> _LevelKind:
        _known(params, {"level"})
        return cls(_dec(params, "level", positive=True))

    def to_params(self) -> dict:
        return {"level": str(self.level)}

    def evaluate(self, event: Tick, series: SymbolSeries | None) -> Observation:
        price = event.ltp
        cond = price > self.level if self.level_side == "above" else price < self.level
        msg = f"{event.symbol} {self.word} {self.level} (last {price})"
        return Observation(cond, price, msg, {"level": str(self.level)})


class PriceAbove(_LevelKind):
    kind = "price_above"
    level_side = "above"
    word = "above"


class PriceBelow(_LevelKind):
    kind = "price_below"
    level_side = "below"
    word = "below"


class CrossUp(_LevelKind):
    kind = "cross_up"
    level_side = "above"
    word = "crossed up through"

    def initial_armed(self, last_price: Decimal | None) -> bool:
        # A crossing needs a previous price at or below the level.
        return last_price is not None and last_price <= self.level


class CrossDown(_LevelKind):
    kind = "cross_down"
    level_side = "below"
    word = "crossed down through"

    def initial_armed(self, last_price: Decimal | None) -> bool:
        return last_price is not None and last_price >= self.level


class PctChange(RuleKind):
    """Percent change of the last price vs the oldest price inside the trailing time window."""

    kind = "pct_change"
    __slots__ = ("pct", "window_seconds", "direction")

    def __init__(self, pct: Decimal, window_seconds: int, direction: str):
        self.pct, self.window_seconds, self.direction = pct, window_seconds, direction

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> PctChange:
        _known(params, {"pct", "window_seconds", "direction"})
        return cls(
            _dec(params, "pct", positive=True),
            _int(params, "window_seconds", 1, MAX_WINDOW_SECONDS),
            _choice(params, "direction", ("up", "down", "abs"), "abs"),
        )

    def to_params(self) -> dict:
        return {"pct": str(self.pct), "window_seconds": self.window_seconds, "direction": self.direction}

    def require(self, series: SymbolSeries) -> None:
        series.require_window(self.window_seconds)

    def evaluate(self, event: Tick, series: SymbolSeries | None) -> Observation | None:
        ref = series.reference_price(self.window_seconds) if series else None
        if ref is None or ref == 0:
            return None
        change = (event.ltp - ref) / ref * 100
        if self.direction == "up":
            cond = change >= self.pct
        elif self.direction == "down":
            cond = change <= -self.pct
        else:
            cond = abs(change) >= self.pct
        change = change.quantize(Decimal("0.0001"))
        msg = (
            f"{event.symbol} moved {change}% in {self.window_seconds}s "
            f"(threshold {self.direction} {self.pct}%)"
        )
        return Observation(cond, change, msg, {"change_pct": str(change), "reference_price": str(ref)})


class VolumeSpike(RuleKind):
    """Tick volume greater than ``factor`` x the average of the previous ``window`` tick volumes."""

    kind = "volume_spike"
    __slots__ = ("factor", "window")

    def __init__(self, factor: Decimal, window: int):
        self.factor, self.window = factor, window

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> VolumeSpike:
        _known(params, {"factor", "window"})
        return cls(_dec(params, "factor", positive=True), _int(params, "window", 2, MAX_TICK_WINDOW, 20))

    def to_params(self) -> dict:
        return {"factor": str(self.factor), "window": self.window}

    def require(self, series: SymbolSeries) -> None:
        series.require_volumes(self.window)

    def evaluate(self, event: Tick, series: SymbolSeries | None) -> Observation | None:
        # Running sum of the `window` volumes before this tick, kept by the series (O(1) per tick).
        total = series.volume_average_sum(self.window) if series else None
        if total is None:
            return None
        avg = Decimal(total) / self.window
        cond = event.volume > avg * self.factor
        ratio = (Decimal(event.volume) / avg).quantize(Decimal("0.01")) if avg else None
        msg = f"{event.symbol} volume {event.volume} vs avg {avg.quantize(Decimal('0.01'))} (x{self.factor})"
        return Observation(
            cond, ratio, msg, {"volume": event.volume, "average": str(avg), "ratio": str(ratio)}
        )


class IndicatorRule(RuleKind):
    """RSI above/below a level, or a fast/slow SMA cross, on completed bars of ``timeframe_seconds``.

    Ticks are aggregated into bars per symbol (close = last tick price of the bar); the indicator is
    updated incrementally when a bar completes and the rule is only evaluated on that tick, so between
    bar closes it costs nothing. The indicator state is shared by every rule on the same
    (symbol, timeframe, period).
    """

    kind = "indicator"
    __slots__ = ("indicator", "period", "op", "level", "fast", "slow", "direction", "bar_timeframe")

    def __init__(self, indicator: str, **kw: Any):
        self.indicator = indicator
        self.period = kw.get("period")
        self.op = kw.get("op")
        self.level = kw.get("level")
        self.fast = kw.get("fast")
        self.slow = kw.get("slow")
        self.direction = kw.get("direction")
        self.bar_timeframe: int = kw.get("timeframe_seconds", DEFAULT_TIMEFRAME_SECONDS)

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> IndicatorRule:
        ind = _choice(params, "indicator", ("rsi", "sma_cross"))
        tf = _int(params, "timeframe_seconds", 1, MAX_TIMEFRAME_SECONDS, DEFAULT_TIMEFRAME_SECONDS)
        if ind == "rsi":
            _known(params, {"indicator", "period", "op", "level", "timeframe_seconds"})
            level = _dec(params, "level")
            if not 0 <= level <= 100:
                raise ValidationFailed("param 'level' must be between 0 and 100", {"field": "level"})
            return cls(
                "rsi",
                period=_int(params, "period", 2, MAX_INDICATOR_PERIOD, 14),
                op=_choice(params, "op", ("above", "below")),
                level=level,
                timeframe_seconds=tf,
            )
        _known(params, {"indicator", "fast", "slow", "direction", "timeframe_seconds"})
        fast = _int(params, "fast", 1, MAX_INDICATOR_PERIOD)
        slow = _int(params, "slow", 2, MAX_INDICATOR_PERIOD)
        if fast >= slow:
            raise ValidationFailed("param 'fast' must be smaller than 'slow'", {"field": "fast"})
        return cls(
            "sma_cross",
            fast=fast,
            slow=slow,
            direction=_choice(params, "direction", ("up", "down")),
            timeframe_seconds=tf,
        )

    def to_params(self) -> dict:
        tf = self.bar_timeframe
        if self.indicator == "rsi":
            return {
                "indicator": "rsi",
                "period": self.period,
                "op": self.op,
                "level": str(self.level),
                "timeframe_seconds": tf,
            }
        return {
            "indicator": "sma_cross",
            "fast": self.fast,
            "slow": self.slow,
            "direction": self.direction,
            "timeframe_seconds": tf,
        }

    def initial_armed(self, last_price: Decimal | None) -> bool:
        # An SMA cross needs to have seen fast on the other side of slow first.
        return self.indicator == "rsi"

    def require(self, series: SymbolSeries) -> None:
        bars = series.bar_series(self.bar_timeframe)
        if self.indicator == "rsi":
            bars.require_rsi(self.period)
        else:
            bars.require_sma(self.fast)
            bars.require_sma(self.slow)

    def evaluate(self, event: Tick, series: SymbolSeries | None) -> Observation | None:
        bars = series.bars.get(self.bar_timeframe) if series is not None else None
        if bars is None or not bars.just_closed:
            return None  # no bar completed on this tick: nothing new to observe
        extra = {"timeframe_seconds": self.bar_timeframe, "bar_close": str(bars.last_close)}
        if self.indicator == "rsi":
            value = bars.rsi[self.period].value
            if value is None:
                return None
            cond = value > float(self.level) if self.op == "above" else value < float(self.level)
            msg = (
                f"{event.symbol} RSI({self.period}, {self.bar_timeframe}s bars) {value:.2f} "
                f"{self.op} {self.level}"
            )
            return Observation(cond, round(value, 4), msg, {"rsi": round(value, 4), **extra})
        if len(bars.closes) < self.slow:
            return None
        fsum, ssum = bars.sma_sums[self.fast], bars.sma_sums[self.slow]
        # Exact comparison of the two averages (sums are exact Decimals): no float ties.
        lhs, rhs = fsum * self.slow, ssum * self.fast
        cond = lhs > rhs if self.direction == "up" else lhs < rhs
        fast, slow = float(fsum / self.fast), float(ssum / self.slow)
        msg = (
            f"{event.symbol} SMA({self.fast}) crossed {self.direction} SMA({self.slow}) "
            f"on {self.bar_timeframe}s bars"
        )
        return Observation(cond, round(fast - slow, 6), msg, {"sma_fast": fast, "sma_slow": slow, **extra})


class PositionPnl(RuleKind):
    kind = "position_pnl"
    source = "pnl"
    __slots__ = ("op", "threshold")

    def __init__(self, op: str, threshold: Decimal):
        self.op, self.threshold = op, threshold

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> PositionPnl:
        _known(params, {"op", "threshold"})
        return cls(_choice(params, "op", ("above", "below")), _dec(params, "threshold"))

    def to_params(self) -> dict:
        return {"op": self.op, "threshold": str(self.threshold)}

    def evaluate(self, event: PnlEvent, series: SymbolSeries | None) -> Observation:
        cond = event.pnl > self.threshold if self.op == "above" else event.pnl < self.threshold
        msg = f"P&L on {event.symbol} {event.pnl} {self.op} {self.threshold}"
        return Observation(cond, event.pnl, msg, {"pnl": str(event.pnl), "threshold": str(self.threshold)})


class StrategySignal(RuleKind):
    kind = "strategy_signal"
    source = "signal"
    rearm_after_event = True
    __slots__ = ("strategy", "signal")

    def __init__(self, strategy: str, signal: str | None):
        self.strategy, self.signal = strategy, signal

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> StrategySignal:
        _known(params, {"strategy", "signal"})
        strategy = params.get("strategy")
        if not isinstance(strategy, str) or not strategy.strip():
            raise ValidationFailed("param 'strategy' is required", {"field": "strategy"})
        signal = params.get("signal")
        if signal is not None and not isinstance(signal, str):
            raise ValidationFailed("param 'signal' must be a string", {"field": "signal"})
        return cls(strategy.strip(), signal.upper() if signal else None)

    def to_params(self) -> dict:
        return {"strategy": self.strategy, "signal": self.signal}

    def evaluate(self, event: SignalEvent, series: SymbolSeries | None) -> Observation | None:
        if event.strategy != self.strategy or (self.signal and event.signal.upper() != self.signal):
            return None
        msg = f"strategy {event.strategy} signalled {event.signal} on {event.symbol}"
        payload = {**event.payload, "strategy": event.strategy, "signal": event.signal}
        return Observation(True, event.signal, msg, payload)


RULE_KINDS: dict[str, type[RuleKind]] = {
    cls.kind: cls
    for cls in (
        PriceAbove,
        PriceBelow,
        CrossUp,
        CrossDown,
        PctChange,
        VolumeSpike,
        IndicatorRule,
        PositionPnl,
        StrategySignal,
    )
}


# --------------------------------------------------------------------------- the rule


@dataclass(slots=True)
class AlertRule:
    """A user's alert. ``recurring=False`` means one-shot: it completes after its first firing."""

    id: Any
    user_id: Any
    symbol: str
    kind: str
    params: dict
    recurring: bool = False
    cooldown_seconds: int = 0
    expires_at: datetime | None = None
    active: bool = True  # False == paused
    spec: RuleKind = field(init=False, repr=False, compare=False)
    #: Rules with equal keys on one symbol observe the same thing: engines may evaluate them once.
    spec_key: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cls = RULE_KINDS.get(self.kind)
        if cls is None:
            raise ValidationFailed(
                f"unknown alert kind '{self.kind}'", {"field": "kind", "allowed": sorted(RULE_KINDS)}
            )
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValidationFailed("symbol is required", {"field": "symbol"})
        if not isinstance(self.params, Mapping):
            raise ValidationFailed("params must be an object", {"field": "params"})
        if isinstance(self.cooldown_seconds, bool) or not isinstance(self.cooldown_seconds, int):
            raise ValidationFailed("cooldown_seconds must be an integer", {"field": "cooldown_seconds"})
        if self.cooldown_seconds < 0:
            raise ValidationFailed("cooldown_seconds must be >= 0", {"field": "cooldown_seconds"})
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValidationFailed("expires_at must be timezone-aware", {"field": "expires_at"})
        self.spec = cls.parse(self.params)
        self.params = self.spec.to_params()
        self.spec_key = (self.kind, tuple(sorted(self.params.items())))

    @property
    def one_shot(self) -> bool:
        return not self.recurring

    def with_changes(self, **changes: Any) -> AlertRule:
        """A validated copy with some common fields changed (``spec`` is re-derived)."""
        allowed = {"symbol", "params", "recurring", "cooldown_seconds", "expires_at", "active"}
        bad = sorted(set(changes) - allowed)
        if bad:
            raise ValidationFailed(f"cannot update field(s): {', '.join(bad)}", {"fields": bad})
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "symbol": self.symbol,
            "kind": self.kind,
            "params": dict(self.params),
            "recurring": self.recurring,
            "cooldown_seconds": self.cooldown_seconds,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        exp = data.get("expires_at")
        return cls(
            id=data["id"],
            user_id=data["user_id"],
            symbol=data["symbol"],
            kind=data["kind"],
            params=dict(data.get("params") or {}),
            recurring=bool(data.get("recurring", False)),
            cooldown_seconds=int(data.get("cooldown_seconds", 0)),
            expires_at=datetime.fromisoformat(exp) if isinstance(exp, str) else exp,
            active=bool(data.get("active", True)),
        )
