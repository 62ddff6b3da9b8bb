"""Upstox Market Data Feed V3: subscription limits, request frames and frame decoding (pure).

Facts, from Upstox's V3 feed documentation (upstox.com/developer/api-documentation/v3/
get-market-data-feed) and the official SDK (github.com/upstox/upstox-python,
upstox_client/feeder/market_data_feeder_v3.py, examples/websocket/market_data/v3):

* ``GET /v3/feed/market-data-feed/authorize`` (``Authorization: Bearer <token>``) answers
  ``{"status": "success", "data": {"authorized_redirect_uri": "wss://..."}}`` (the camelCase
  ``authorizedRedirectUri`` is deprecated). The URI is single-use: every connection authorizes anew.
* Requests are JSON sent as a BINARY frame: ``{"guid", "method": "sub"|"unsub"|"change_mode",
  "data": {"mode": "ltpc"|"full"|"option_greeks"|"full_d30", "instrumentKeys": [...]}}``.
* Every server frame is one protobuf ``FeedResponse`` (MarketDataFeedV3.proto): ``type``
  ``market_info`` (segment statuses, the first frame after connecting), ``initial_feed`` (snapshot
  after a subscribe) or ``live_feed``; ``feeds`` maps instrument key -> ``Feed``.
* Limits: 1 connection per app-user; instrument keys per mode when only that mode is subscribed
  (individual) / when several modes are subscribed at once (combined): LTPC 5000 / 2000,
  Option Greeks 3000 / 2000, Full 2000 / 1500. ``full_d30`` (Upstox Plus) has no published
  limit in our sources, so it is not offered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from backend.domain.errors import ValidationFailed
from backend.domain.market.types import Tick
from backend.domain.upstox_http import dec as _dec

from . import MarketDataFeedV3_pb2 as pb

AUTHORIZE_PATH = "/v3/feed/market-data-feed/authorize"
MODES = ("ltpc", "full", "option_greeks")
METHODS = ("sub", "unsub", "change_mode")
# (individual, combined) instrument-key limits per mode, V3 doc "Connection and Subscription Limits".
KEY_LIMITS: dict[str, tuple[int, int]] = {
    "ltpc": (5000, 2000),
    "option_greeks": (3000, 2000),
    "full": (2000, 1500),
}
# Keys per request frame: our choice (Upstox documents no per-message cap) to keep frames small.
DEFAULT_KEYS_PER_REQUEST = 500
FRAME_TYPES = {pb.initial_feed: "initial_feed", pb.live_feed: "live_feed", pb.market_info: "market_info"}
MARKET_STATUS = {v.number: v.name for v in pb.DESCRIPTOR.enum_types_by_name["MarketStatus"].values}


class FeedLimitExceeded(ValidationFailed):
    """More instrument keys than Upstox allows for a mode (never sent: Upstox would drop them)."""

    code = "FEED_KEY_LIMIT"


class KeyLookup(Protocol):
    """Instrument key -> trading symbol (None when the key is unknown)."""

    def symbol_for(self, instrument_key: str) -> str | None: ...


def check_limits(keys_by_mode: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Counts per mode; FeedLimitExceeded naming the mode when one is over its documented limit.

    A key subscribed in two modes counts in both (Upstox keeps one mode per key, the last one, but
    we never send that: :func:`plan` puts each key in one mode)."""
    counts = {m: len(set(keys)) for m, keys in keys_by_mode.items() if keys}
    for mode in counts:
        if mode not in KEY_LIMITS:
            raise ValidationFailed(
                f"unknown feed mode {mode!r}; expected one of {', '.join(MODES)}",
                details={"field": "mode", "allowed": list(MODES)},
            )
    combined = len(counts) > 1
    for mode, n in counts.items():
        limit = KEY_LIMITS[mode][1 if combined else 0]
        if n > limit:
            raise FeedLimitExceeded(
                f"{n} instrument keys in {mode} mode exceed Upstox's "
                f"{'combined' if combined else 'individual'} limit of {limit}",
                details={"field": "instrumentKeys", "mode": mode, "count": n, "limit": limit},
            )
    return counts


def limit_for(mode: str, modes_in_use: int) -> int:
    """The documented key limit of ``mode`` when ``modes_in_use`` modes are subscribed together."""
    return KEY_LIMITS[mode][1 if modes_in_use > 1 else 0]


def build_request(method: str, keys: list[str], mode: str | None = None, guid: str | None = None) -> bytes:
    """One request frame body (sent with the BINARY opcode, as the SDK does)."""
    if method not in METHODS:
        raise ValidationFailed(f"unknown feed method {method!r}", details={"field": "method"})
    data: dict[str, Any] = {"instrumentKeys": list(keys)}
    if mode is not None:
        if mode not in MODES:
            raise ValidationFailed(f"unknown feed mode {mode!r}", details={"field": "mode"})
        data["mode"] = mode
    body = {"guid": guid or uuid.uuid4().hex, "method": method, "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


def plan(
    current: Mapping[str, set[str]],
    wanted: Mapping[str, set[str]],
    keys_per_request: int = DEFAULT_KEYS_PER_REQUEST,
) -> list[bytes]:
    """Request frames turning subscription ``current`` into ``wanted`` ({mode: keys}).

    Limits are checked on ``wanted`` first (nothing is sent when it is over). Keys leaving
    are unsubscribed, keys whose mode changes get ``change_mode``, new keys ``sub``; each list is
    chunked to ``keys_per_request``."""
    check_limits(wanted)
    size = max(1, int(keys_per_request))
    cur_mode = {k: m for m, ks in current.items() for k in ks}
    new_mode = {k: m for m, ks in wanted.items() for k in ks}
    frames: list[bytes] = []

    def add_requests(method: str, keys: list[str], mode: str | None) -> None:
        for i in range(0, len(keys), size):
            frames.append(build_request(method, keys[i : i + size], mode))

    add_requests("unsub", sorted(k for k in cur_mode if k not in new_mode), None)
    for mode in MODES:
        mine = [k for k, m in new_mode.items() if m == mode]
        add_requests("change_mode", sorted(k for k in mine if cur_mode.get(k) not in (None, mode)), mode)
        add_requests("sub", sorted(k for k in mine if k not in cur_mode), mode)
    return frames


# ---------------------------------------------------------------------- decoding


@dataclass(slots=True)
class Frame:
    """One decoded server frame."""

    type: str  # market_info | initial_feed | live_feed
    ts: datetime | None
    ticks: list[Tick] = field(default_factory=list)
    segment_status: dict[str, str] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)


class MalformedFrame(ValueError):
    """A frame that is not a FeedResponse (or a text frame: Upstox sends binary only)."""


_DEC_CACHE: dict[float, Decimal] = {}
_DEC_CACHE_MAX = 65_536


def dec(value: float) -> Decimal:
    """A protobuf double as Decimal (rounded like the REST path), never in exponent form: 1400.0
    is ``1400``, not ``1.4E+3``, so quotes serialise as plain strings.

    Memoised: prices repeat (tick-size steps, depth levels, the day's OHLC, close) and the
    float -> str -> Decimal conversion was most of the decode time (docs/benchmarks.md)."""
    d = _DEC_CACHE.get(value)
    if d is None:
        d = _dec(value)
        if d.as_tuple().exponent > 0:  # type: ignore[operator]
            d = d.quantize(Decimal(1))
        if len(_DEC_CACHE) >= _DEC_CACHE_MAX:
            _DEC_CACHE.clear()  # bounded; a rebuild costs one conversion per distinct price
        _DEC_CACHE[value] = d
    return d


def _ms(value: int) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value > 0 else None


def _greeks(g: Any) -> dict[str, float]:
    return {"delta": g.delta, "theta": g.theta, "gamma": g.gamma, "vega": g.vega, "rho": g.rho}


class FrameDecoder:
    """Decodes ``FeedResponse`` bytes into :class:`Tick` values keyed by our trading symbols.

    ``Tick.volume`` is the quantity traded since the previous tick of the symbol: the change in
    ``vtt`` (volume traded today) when the mode sends it (full, option_greeks), else ``ltq`` when
    ``ltt`` moved (ltpc carries only the last trade). Not thread-safe: one decoder per socket."""

    def __init__(self, lookup: KeyLookup) -> None:
        self.lookup = lookup
        self._vtt: dict[str, int] = {}
        self._ltt: dict[str, int] = {}

    def reset(self) -> None:
        """Forget per-symbol volume state (after a reconnect the snapshot restarts the count)."""
        self._vtt.clear()
        self._ltt.clear()

    def decode(self, data: bytes) -> Frame:
        msg = pb.FeedResponse()
        try:
            msg.ParseFromString(data)
        except (DecodeError, TypeError) as exc:
            raise MalformedFrame(f"not a FeedResponse: {exc}") from exc
        if msg.type not in FRAME_TYPES:
            raise MalformedFrame(f"unknown frame type {msg.type}")
        now = _ms(msg.currentTs)
        frame = Frame(type=FRAME_TYPES[msg.type], ts=now)
        if msg.HasField("marketInfo"):
            frame.segment_status = {
                seg: MARKET_STATUS.get(st, str(st)) for seg, st in msg.marketInfo.segmentStatus.items()
            }
        for key, feed in msg.feeds.items():
            symbol = self.lookup.symbol_for(key)
            if symbol is None:
                frame.unknown_keys.append(key)
                continue
            tick = self._tick(symbol, key, feed, now, frame.type)
            if tick is not None:
                frame.ticks.append(tick)
        return frame

    def _tick(self, symbol: str, key: str, feed: Any, now: datetime | None, ftype: str) -> Tick | None:
        union = feed.WhichOneof("FeedUnion")
        extra: dict[str, Any] = {"instrument_key": key, "frame": ftype}
        vtt: int | None = None
        bid = ask = None
        if union == "ltpc":
            ltpc = feed.ltpc
            extra["mode"] = "ltpc"
        elif union == "fullFeed":
            ff = feed.fullFeed
            extra["mode"] = "full"
            if ff.WhichOneof("FullFeedUnion") == "indexFF":
                ltpc = ff.indexFF.ltpc
                ohlc = ff.indexFF.marketOHLC.ohlc
            else:
                m = ff.marketFF
                ltpc = m.ltpc
                ohlc = m.marketOHLC.ohlc
                vtt = m.vtt
                levels = m.marketLevel.bidAskQuote
                if levels:
                    bid, ask = dec(levels[0].bidP), dec(levels[0].askP)
                    extra["depth"] = [
                        {"bid_qty": q.bidQ, "bid": dec(q.bidP), "ask_qty": q.askQ, "ask": dec(q.askP)}
                        for q in levels
                    ]
                extra.update(
                    atp=dec(m.atp), oi=int(m.oi), iv=m.iv, tbq=int(m.tbq), tsq=int(m.tsq),
                    greeks=_greeks(m.optionGreeks),
                )  # fmt: skip
            for bar in ohlc:
                if bar.interval == "1d":
                    extra["day"] = {
                        "open": dec(bar.open), "high": dec(bar.high), "low": dec(bar.low),
                        "close": dec(bar.close), "volume": int(bar.vol),
                    }  # fmt: skip
        elif union == "firstLevelWithGreeks":
            fl = feed.firstLevelWithGreeks
            ltpc = fl.ltpc
            extra["mode"] = "option_greeks"
            vtt = fl.vtt
            if fl.HasField("firstDepth"):
                bid, ask = dec(fl.firstDepth.bidP), dec(fl.firstDepth.askP)
            extra.update(oi=int(fl.oi), iv=fl.iv, greeks=_greeks(fl.optionGreeks))
        else:
            return None  # an empty Feed: nothing to publish
        ltp = dec(ltpc.ltp)
        extra["close"] = dec(ltpc.cp)
        ts = _ms(ltpc.ltt) or now or datetime.now(UTC)
        if vtt is not None and vtt > 0:
            prev = self._vtt.get(symbol)
            self._vtt[symbol] = vtt
            volume = max(vtt - prev, 0) if prev is not None else 0
            cum = vtt
        else:
            prev_ltt = self._ltt.get(symbol)
            self._ltt[symbol] = ltpc.ltt
            volume = int(ltpc.ltq) if prev_ltt is not None and ltpc.ltt != prev_ltt else 0
            cum = 0
        zero = Decimal(0)
        return Tick(
            symbol=symbol,
            ltp=ltp,
            bid=bid if bid is not None and bid > zero else ltp,
            ask=ask if ask is not None and ask > zero else ltp,
            volume=volume,
            ts=ts,
            cum_volume=cum,
            extra=extra,
        )
