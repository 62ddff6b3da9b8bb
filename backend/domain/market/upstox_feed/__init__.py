"""Upstox Market Data Feed V3 (websocket): the published .proto, its generated module, the request
and decode protocol, and the supervised client. See docs/brokers.md ("Market-data websocket")."""

from backend.domain.market.upstox_feed.client import UpstoxMarketStream
from backend.domain.market.upstox_feed.protocol import (
    KEY_LIMITS,
    MODES,
    FeedLimitExceeded,
    Frame,
    FrameDecoder,
    MalformedFrame,
    build_request,
    check_limits,
    plan,
)

__all__ = [
    "KEY_LIMITS",
    "MODES",
    "FeedLimitExceeded",
    "Frame",
    "FrameDecoder",
    "MalformedFrame",
    "UpstoxMarketStream",
    "build_request",
    "check_limits",
    "plan",
]
