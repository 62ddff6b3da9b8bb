"""Alert evaluation engines.

``AlertEngine`` indexes level rules (price_above/below, cross_up/down) per symbol in sorted arrays so a
tick costs O(log n + changed) instead of a scan; ``NaiveAlertEngine`` scans every rule on every event
and is the executable specification the indexed engine is tested against.

Semantics shared by both (see docs/alerts.md):

* edge-triggered: a rule fires when its condition becomes true while *armed*; firing disarms it and it
  re-arms only once the condition has been observed false again. So exactly one firing per crossing.
* a crossing that happens while a recurring rule is in its cooldown is consumed without firing.
* one-shot rules are marked ``done`` after firing and never evaluated again.
* rules whose ``expires_at <= event time`` are dropped (lazily, on the next event); see ``pop_expired``.
* paused rules are not evaluated at all; on resume they keep their armed state.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from backend.domain.alerts.rules import AlertRule, Observation, PnlEvent, SignalEvent
from backend.domain.alerts.series import SymbolSeries
from backend.domain.alerts.state import RuleState
from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.market.types import Tick

STATE_VERSION = 1
DEFAULT_MAX_RULES_PER_USER = 200


@dataclass(slots=True)
class Firing:
    rule_id: Any
    user_id: Any
    symbol: str
    kind: str
    price: Decimal | None
    message: str
    fired_at: datetime
    payload: dict = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready form (the body of the ``alert.fired`` webhook ``data`` field)."""
        return {
            "rule_id": self.rule_id,
            "user_id": self.user_id,
            "symbol": self.symbol,
            "kind": self.kind,
            "price": str(self.price) if self.price is not None else None,
            "message": self.message,
            "fired_at": self.fired_at.isoformat(),
            "payload": self.payload,
        }


class _BaseEngine:
    """Rule bookkeeping, state transitions and persistence shared by both engines."""

    def __init__(self, max_rules_per_user: int = DEFAULT_MAX_RULES_PER_USER) -> None:
        self.max_rules_per_user = max_rules_per_user
        self._rules: dict[Any, AlertRule] = {}
        self._states: dict[Any, RuleState] = {}
        self._seq: dict[Any, int] = {}
        self._next_seq = 0
        self._series: dict[str, SymbolSeries] = {}
        self._user_counts: Counter = Counter()  # live (not done) rules per user, paused included
        self._pending_states: dict[Any, dict] = {}
        self._expired: list[Any] = []

    # ------------------------------------------------------------------ rule management

    def add(self, rule: AlertRule) -> RuleState:
        if rule.id in self._rules:
            raise Conflict(f"alert rule {rule.id!r} already exists", {"rule_id": rule.id})
        pending = self._pending_states.pop(rule.id, None)
        series = self._series_for(rule.symbol)
        if pending:
            state = RuleState.from_dict(pending)
        else:
            state = RuleState(armed=rule.spec.initial_armed(series.last_price))
        if not state.done and self._user_counts[rule.user_id] >= self.max_rules_per_user:
            raise ValidationFailed(
                f"too many active alert rules: the cap is {self.max_rules_per_user} per user",
                {"cap": self.max_rules_per_user, "field": "max_rules_per_user"},
            )
        rule.spec.require(series)
        self._rules[rule.id] = rule
        self._states[rule.id] = state
        self._seq[rule.id] = self._next_seq
        self._next_seq += 1
        if not state.done:
            self._user_counts[rule.user_id] += 1
        self._on_added(rule.id)
        if self._live(rule.id):
            self._index_add(rule.id)
        return state

    def remove(self, rule_id: Any) -> AlertRule:
        rule = self.get(rule_id)
        if self._live(rule_id):
            self._index_remove(rule_id)
        if not self._states[rule_id].done:
            self._user_counts[rule.user_id] -= 1
        del self._rules[rule_id], self._states[rule_id], self._seq[rule_id]
        return rule

    def update(self, rule_id: Any, **changes: Any) -> AlertRule:
        """Change common fields or params. New params/symbol re-derive the armed state."""
        old = self.get(rule_id)
        new = old.with_changes(**changes)
        was_live = self._live(rule_id)
        if was_live:
            self._index_remove(rule_id)
        self._rules[rule_id] = new
        series = self._series_for(new.symbol)
        new.spec.require(series)
        if new.params != old.params or new.symbol != old.symbol:
            self._states[rule_id].armed = new.spec.initial_armed(series.last_price)
        self._on_added(rule_id)
        if self._live(rule_id):
            self._index_add(rule_id)
        return new

    def pause(self, rule_id: Any) -> AlertRule:
        return self.update(rule_id, active=False)

    def resume(self, rule_id: Any) -> AlertRule:
        return self.update(rule_id, active=True)

    def get(self, rule_id: Any) -> AlertRule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise NotFound(f"alert rule {rule_id!r} not found", {"rule_id": rule_id}) from None

    def state(self, rule_id: Any) -> RuleState:
        self.get(rule_id)
        return self._states[rule_id]

    def rules(self) -> list[AlertRule]:
        return list(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def active_count(self, user_id: Any) -> int:
        return self._user_counts[user_id]

    def pop_expired(self) -> list[Any]:
        """Ids of rules dropped for expiry since the last call (for the service to persist)."""
        out, self._expired = self._expired, []
        return out

    # ------------------------------------------------------------------ events

    def on_tick(self, tick: Tick) -> list[Firing]:
        self._expire(tick.ts)
        series = self._series_for(tick.symbol)
        series.observe(tick)
        fired: list[tuple[int, Firing]] = []
        self._evaluate_tick(tick, series, fired)
        return self._ordered(fired)

    def on_pnl(self, user_id: Any, symbol: str, pnl: Decimal, ts: datetime) -> list[Firing]:
        """Feed a P&L update for one position (``symbol``) or the portfolio (``symbol="*"``)."""
        self._expire(ts)
        event = PnlEvent(user_id, symbol, pnl if isinstance(pnl, Decimal) else Decimal(str(pnl)), ts)
        fired: list[tuple[int, Firing]] = []
        for rid in self._candidates("pnl", event):
            self._evaluate(rid, event, None, None, fired)
        return self._ordered(fired)

    def on_signal(
        self,
        strategy: str,
        symbol: str,
        signal: str,
        ts: datetime,
        user_id: Any = None,
        payload: dict | None = None,
    ) -> list[Firing]:
        """Feed a strategy signal event; ``user_id=None`` reaches every user's matching rule."""
        self._expire(ts)
        event = SignalEvent(strategy, symbol, signal, ts, user_id, dict(payload or {}))
        price = (payload or {}).get("price")
        fired: list[tuple[int, Firing]] = []
        for rid in self._candidates("signal", event):
            self._evaluate(rid, event, None, price, fired)
        return self._ordered(fired)

    # ------------------------------------------------------------------ persistence

    def export_state(self) -> dict:
        return {
            "version": STATE_VERSION,
            "rules": [{"id": rid, "state": st.to_dict()} for rid, st in self._states.items()],
            "symbols": {sym: s.to_dict() for sym, s in self._series.items()},
        }

    def load_state(self, data: dict) -> None:
        """Restore states exported earlier. Rules not added yet get their state when they are added."""
        if data.get("version") != STATE_VERSION:
            raise ValidationFailed("unsupported alert state version", {"version": data.get("version")})
        for sym, sdata in data.get("symbols", {}).items():
            self._series_for(sym).load(sdata)
        for rule in self._rules.values():
            rule.spec.require(self._series_for(rule.symbol))
        for entry in data.get("rules", []):
            rid = entry["id"]
            if rid not in self._rules:
                self._pending_states[rid] = entry["state"]
                continue
            new = RuleState.from_dict(entry["state"])
            if self._live(rid):
                self._index_remove(rid)
            old = self._states[rid]
            user = self._rules[rid].user_id
            self._user_counts[user] += int(old.done) - int(new.done)
            self._states[rid] = new
            if self._live(rid):
                self._index_add(rid)

    # ------------------------------------------------------------------ internals

    def _series_for(self, symbol: str) -> SymbolSeries:
        s = self._series.get(symbol)
        if s is None:
            s = self._series[symbol] = SymbolSeries()
        return s

    def _live(self, rid: Any) -> bool:
        return self._rules[rid].active and not self._states[rid].done

    def _drop_expired(self, rid: Any) -> None:
        self.remove(rid)
        self._expired.append(rid)

    @staticmethod
    def _ordered(fired: list[tuple[int, Firing]]) -> list[Firing]:
        fired.sort(key=lambda p: p[0])
        return [f for _, f in fired]

    def _evaluate(
        self, rid: Any, event: Any, series: SymbolSeries | None, price: Any, out: list[tuple[int, Firing]]
    ) -> None:
        rule = self._rules[rid]
        obs = rule.spec.evaluate(event, series)
        if obs is None:
            return
        firing = self._transition(rid, rule, obs, event.ts, price)
        if firing is not None:
            out.append((self._seq[rid], firing))

    def _transition(
        self, rid: Any, rule: AlertRule, obs: Observation, now: datetime, price: Any
    ) -> Firing | None:
        """The single edge-trigger/cooldown/one-shot state machine used by every kind and both engines."""
        state = self._states[rid]
        if not obs.condition:
            state.armed = True
            return None
        if not state.armed:
            return None
        state.armed = rule.spec.rearm_after_event
        if (
            rule.recurring
            and rule.cooldown_seconds
            and state.last_fired_at is not None
            and (now - state.last_fired_at).total_seconds() < rule.cooldown_seconds
        ):
            state.suppressed_count += 1
            return None
        state.last_fired_at = now
        state.fire_count += 1
        state.last_value = obs.value
        if rule.one_shot:
            # Index removal is the caller's job (it knows where the rule sits); counts are ours.
            state.done = True
            self._user_counts[rule.user_id] -= 1
            self._on_done(rid)
        if price is not None and not isinstance(price, Decimal):
            price = Decimal(str(price))
        return Firing(rid, rule.user_id, rule.symbol, rule.kind, price, obs.message, now, dict(obs.payload))

    # hooks ----------------------------------------------------------------------------------------

    def _on_added(self, rid: Any) -> None:
        pass

    def _on_done(self, rid: Any) -> None:
        pass

    def _index_add(self, rid: Any) -> None:
        pass

    def _index_remove(self, rid: Any) -> None:
        pass

    def _expire(self, now: datetime) -> None:
        raise NotImplementedError

    def _evaluate_tick(self, tick: Tick, series: SymbolSeries, out: list[tuple[int, Firing]]) -> None:
        raise NotImplementedError

    def _candidates(self, source: str, event: Any) -> Iterable[Any]:
        raise NotImplementedError


class NaiveAlertEngine(_BaseEngine):
    """Reference implementation: scans every rule on every event."""

    def _expire(self, now: datetime) -> None:
        gone = [rid for rid, r in self._rules.items() if r.expires_at is not None and r.expires_at <= now]
        for rid in gone:
            self._drop_expired(rid)

    def _evaluate_tick(self, tick: Tick, series: SymbolSeries, out: list[tuple[int, Firing]]) -> None:
        for rid, rule in self._rules.items():
            if rule.symbol != tick.symbol or rule.spec.source != "tick" or not self._live(rid):
                continue
            self._evaluate(rid, tick, series, tick.ltp, out)

    def _candidates(self, source: str, event: Any) -> Iterable[Any]:
        return [
            rid
            for rid, rule in self._rules.items()
            if rule.spec.source == source
            and rule.symbol == event.symbol
            and self._live(rid)
            and (source != "pnl" or rule.user_id == event.user_id)
            and (source != "signal" or event.user_id is None or rule.user_id == event.user_id)
        ]


class _LevelBook:
    """Sorted levels of one symbol's live level rules, split by side and armed state.

    Parallel lists (level, seq) keep bisect on plain Decimals (no key function in the hot path).
    Invariant: an armed 'above' rule has level >= the last price (else it would have fired), an
    armed 'below' rule has level <= the last price; disarmed ones are on the other side.
    """

    __slots__ = ("a_lv", "a_id", "da_lv", "da_id", "b_lv", "b_id", "db_lv", "db_id")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, [])

    def lists(self, side: str, armed: bool) -> tuple[list, list]:
        if side == "above":
            return (self.a_lv, self.a_id) if armed else (self.da_lv, self.da_id)
        return (self.b_lv, self.b_id) if armed else (self.db_lv, self.db_id)


def _insert(lv: list, ids: list, level: Decimal, seq: int) -> None:
    i = bisect_right(lv, level)
    lv.insert(i, level)
    ids.insert(i, seq)


def _delete(lv: list, ids: list, level: Decimal, seq: int) -> bool:
    i, j = bisect_left(lv, level), bisect_right(lv, level)
    for k in range(i, j):
        if ids[k] == seq:
            del lv[k], ids[k]
            return True
    return False


def _merge(lv: list, ids: list, new_lv: list, new_ids: list) -> None:
    if len(new_lv) <= 16:
        for level, seq in zip(new_lv, new_ids, strict=True):
            _insert(lv, ids, level, seq)
        return
    pairs = sorted(zip(lv + new_lv, ids + new_ids, strict=True))
    lv[:] = [p[0] for p in pairs]
    ids[:] = [p[1] for p in pairs]


class AlertEngine(_BaseEngine):
    """Indexed engine: O(log n + fired) per tick for level rules, per-symbol lists for the rest."""

    def __init__(self, max_rules_per_user: int = DEFAULT_MAX_RULES_PER_USER) -> None:
        super().__init__(max_rules_per_user)
        self._books: dict[str, _LevelBook] = {}
        self._others: dict[tuple, dict[int, Any]] = {}  # (source, key) -> {seq: rule_id}
        self._by_seq: dict[int, Any] = {}
        self._expiry: list[tuple[datetime, int, Any]] = []

    # hooks ----------------------------------------------------------------------------------------

    def _on_added(self, rid: Any) -> None:
        rule, seq = self._rules[rid], self._seq[rid]
        self._by_seq[seq] = rid
        if rule.expires_at is not None:
            heapq.heappush(self._expiry, (rule.expires_at, seq, rid))

    def remove(self, rule_id: Any) -> AlertRule:
        seq = self._seq.get(rule_id)
        rule = super().remove(rule_id)
        self._by_seq.pop(seq, None)
        return rule

    @staticmethod
    def _other_key(rule: AlertRule) -> tuple:
        spec = rule.spec
        if spec.source == "pnl":
            return ("pnl", rule.user_id, rule.symbol)
        if spec.bar_timeframe is not None:
            return ("bar", rule.symbol, spec.bar_timeframe)
        return (spec.source, rule.symbol)

    def _index_add(self, rid: Any) -> None:
        rule, seq = self._rules[rid], self._seq[rid]
        side = rule.spec.level_side
        if side is None:
            self._others.setdefault(self._other_key(rule), {})[seq] = rid
            return
        book = self._books.get(rule.symbol)
        if book is None:
            book = self._books[rule.symbol] = _LevelBook()
        _insert(*book.lists(side, self._states[rid].armed), rule.spec.level, seq)

    def _index_remove(self, rid: Any) -> None:
        rule, seq = self._rules[rid], self._seq[rid]
        side = rule.spec.level_side
        if side is None:
            self._others.get(self._other_key(rule), {}).pop(seq, None)
            return
        book = self._books[rule.symbol]
        armed = self._states[rid].armed
        if not _delete(*book.lists(side, armed), rule.spec.level, seq):
            _delete(*book.lists(side, not armed), rule.spec.level, seq)

    def _on_done(self, rid: Any) -> None:
        rule = self._rules[rid]
        if rule.spec.level_side is None:
            self._others.get(self._other_key(rule), {}).pop(self._seq[rid], None)
        # Level rules are already out of their list when they fire (see _cross).

    def _expire(self, now: datetime) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            exp, seq, rid = heapq.heappop(heap)
            rule = self._rules.get(rid)
            # Entries are never updated in place: skip ones left behind by update/remove/re-add.
            current = rule is not None and self._seq[rid] == seq
            if current and rule.expires_at is not None and rule.expires_at <= now:
                self._drop_expired(rid)

    def _candidates(self, source: str, event: Any) -> Iterable[Any]:
        if source == "pnl":
            bucket = self._others.get(("pnl", event.user_id, event.symbol), {})
            return list(bucket.values())
        bucket = self._others.get((source, event.symbol), {})
        if event.user_id is None:
            return list(bucket.values())
        return [rid for rid in bucket.values() if self._rules[rid].user_id == event.user_id]

    # hot path -------------------------------------------------------------------------------------

    def _evaluate_tick(self, tick: Tick, series: SymbolSeries, out: list[tuple[int, Firing]]) -> None:
        book = self._books.get(tick.symbol)
        if book is not None:
            price = tick.ltp
            # above: armed levels < price were crossed upwards; disarmed levels >= price re-arm.
            i = bisect_left(book.a_lv, price)
            if i:
                crossed = book.a_id[:i]
                del book.a_lv[:i], book.a_id[:i]
                self._cross(crossed, tick, series, book.da_lv, book.da_id, out)
            j = bisect_left(book.da_lv, price)
            if j < len(book.da_lv):
                self._rearm(book.da_lv, book.da_id, j, None, book.a_lv, book.a_id)
            # below: armed levels > price were crossed downwards; disarmed levels <= price re-arm.
            i = bisect_right(book.b_lv, price)
            if i < len(book.b_lv):
                crossed = book.b_id[i:]
                del book.b_lv[i:], book.b_id[i:]
                self._cross(crossed, tick, series, book.db_lv, book.db_id, out)
            j = bisect_right(book.db_lv, price)
            if j:
                self._rearm(book.db_lv, book.db_id, 0, j, book.b_lv, book.b_id)
        others = self._others.get(("tick", tick.symbol))
        if others:
            self._evaluate_bucket(others, tick, series, out)
        # Indicator rules change only when a bar of their timeframe completes on this tick.
        for tf, bars in series.bars.items():
            if bars.just_closed:
                bucket = self._others.get(("bar", tick.symbol, tf))
                if bucket:
                    self._evaluate_bucket(bucket, tick, series, out)

    def _evaluate_bucket(
        self, bucket: dict[int, Any], tick: Tick, series: SymbolSeries, out: list[tuple[int, Firing]]
    ) -> None:
        # Rules with identical params on this symbol share one observation per tick.
        cache: dict[tuple, Observation | None] = {}
        rules = self._rules
        for seq, rid in list(bucket.items()):
            rule = rules[rid]
            key = rule.spec_key
            if key in cache:
                obs = cache[key]
            else:
                obs = cache[key] = rule.spec.evaluate(tick, series)
            if obs is not None:
                firing = self._transition(rid, rule, obs, tick.ts, tick.ltp)
                if firing is not None:
                    out.append((seq, firing))

    def _cross(
        self,
        crossed: list[int],
        tick: Tick,
        series: SymbolSeries,
        dis_lv: list,
        dis_id: list,
        out: list[tuple[int, Firing]],
    ) -> None:
        for seq in crossed:
            rid = self._by_seq[seq]
            rule = self._rules[rid]
            self._evaluate(rid, tick, series, tick.ltp, out)
            state = self._states[rid]
            if not state.done:
                _insert(dis_lv, dis_id, rule.spec.level, seq)

    def _rearm(self, lv: list, ids: list, lo: int, hi: int | None, to_lv: list, to_id: list) -> None:
        moved_lv, moved_id = lv[lo:hi], ids[lo:hi]
        del lv[lo:hi], ids[lo:hi]
        states, by_seq = self._states, self._by_seq
        for seq in moved_id:
            states[by_seq[seq]].armed = True
        _merge(to_lv, to_id, moved_lv, moved_id)
