"""Upstox V3 feed protocol (no app, no network): limits, request frames, decoding in every mode."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.market.upstox_feed import (
    KEY_LIMITS,
    FeedLimitExceeded,
    FrameDecoder,
    MalformedFrame,
    build_request,
    check_limits,
    plan,
)
from backend.domain.market.upstox_feed import MarketDataFeedV3_pb2 as pb
from tests.stubs.upstox_ws_stub import StubQuote, feed_for, market_info_frame, response

KEYS = {"NSE_EQ|INE002A01018": "RELIANCE", "NSE_INDEX|Nifty 50": "NIFTY", "NSE_FO|43885": "NIFTY 24500 CE"}


class Lookup:
    def symbol_for(self, key):
        return KEYS.get(key)


def keys(n, prefix="K"):
    return {f"NSE_EQ|{prefix}{i}" for i in range(n)}


# ------------------------------------------------------------------ limits


def test_documented_limits():
    assert KEY_LIMITS == {"ltpc": (5000, 2000), "option_greeks": (3000, 2000), "full": (2000, 1500)}


@pytest.mark.parametrize("mode,individual", [("ltpc", 5000), ("option_greeks", 3000), ("full", 2000)])
def test_individual_limit_per_mode(mode, individual):
    assert check_limits({mode: keys(individual)}) == {mode: individual}
    with pytest.raises(FeedLimitExceeded) as err:
        check_limits({mode: keys(individual + 1)})
    assert err.value.details == {
        "field": "instrumentKeys",
        "mode": mode,
        "count": individual + 1,
        "limit": individual,
    }
    assert "individual limit" in err.value.message


def test_combined_limits_apply_when_modes_mix():
    check_limits({"ltpc": keys(2000), "full": keys(1500, "F")})
    with pytest.raises(FeedLimitExceeded) as err:
        check_limits({"ltpc": keys(2001), "full": keys(1, "F")})
    assert err.value.details["limit"] == 2000 and "combined" in err.value.message
    with pytest.raises(FeedLimitExceeded) as err:
        check_limits({"ltpc": keys(1), "full": keys(1501, "F")})
    assert err.value.details["mode"] == "full" and err.value.details["limit"] == 1500


def test_unknown_mode_is_refused():
    with pytest.raises(ValidationFailed):
        check_limits({"full_d30": {"NSE_EQ|A"}})
    with pytest.raises(ValidationFailed):
        build_request("sub", ["NSE_EQ|A"], "quote")
    with pytest.raises(ValidationFailed):
        build_request("subscribe", ["NSE_EQ|A"], "ltpc")


# ------------------------------------------------------------------ requests


def test_request_shape_matches_the_sdk():
    body = json.loads(build_request("sub", ["NSE_EQ|A", "NSE_EQ|B"], "full", guid="g1"))
    assert body == {
        "guid": "g1",
        "method": "sub",
        "data": {"mode": "full", "instrumentKeys": ["NSE_EQ|A", "NSE_EQ|B"]},
    }
    assert "mode" not in json.loads(build_request("unsub", ["NSE_EQ|A"]))["data"]


def test_plan_subscribes_changes_mode_unsubscribes_and_chunks():
    current = {"ltpc": {"A", "B", "C"}}
    wanted = {"ltpc": {"A"}, "full": {"B", "D", "E", "F"}}
    frames = [json.loads(f) for f in plan(current, wanted, keys_per_request=2)]
    got = [(f["method"], f["data"].get("mode"), f["data"]["instrumentKeys"]) for f in frames]
    assert got == [
        ("unsub", None, ["C"]),
        ("change_mode", "full", ["B"]),
        ("sub", "full", ["D", "E"]),
        ("sub", "full", ["F"]),
    ]
    assert plan(wanted, wanted) == []


def test_plan_over_limit_sends_nothing():
    with pytest.raises(FeedLimitExceeded):
        plan({}, {"full": keys(2001)})


# ------------------------------------------------------------------ decoding


def test_market_info_frame():
    frame = FrameDecoder(Lookup()).decode(market_info_frame())
    assert frame.type == "market_info" and frame.ticks == []
    assert frame.segment_status["NSE_EQ"] == "NORMAL_OPEN"


def test_ltpc_decodes_and_counts_volume_only_on_a_new_trade():
    dec = FrameDecoder(Lookup())
    key = "NSE_EQ|INE002A01018"
    q = StubQuote(ltp=2905.15, cp=2890.0, ltt=1_763_616_600_000, ltq=7)
    first = dec.decode(response(pb.initial_feed, {key: feed_for(key, "ltpc", q)})).ticks[0]
    assert first.symbol == "RELIANCE" and first.ltp == Decimal("2905.15")
    assert first.bid == first.ask == Decimal("2905.15")  # ltpc has no depth
    assert first.ts == datetime.fromtimestamp(1_763_616_600, UTC)
    assert first.volume == 0 and first.extra["close"] == Decimal("2890") and first.extra["mode"] == "ltpc"
    assert str(first.extra["close"]) == "2890"  # plain, never "2.89E+3"
    assert first.extra["frame"] == "initial_feed"
    same = dec.decode(response(pb.live_feed, {key: feed_for(key, "ltpc", q)})).ticks[0]
    assert same.volume == 0  # same last trade re-sent
    q.ltt += 250
    q.ltq = 12
    nxt = dec.decode(response(pb.live_feed, {key: feed_for(key, "ltpc", q)})).ticks[0]
    assert nxt.volume == 12 and nxt.extra["frame"] == "live_feed"


def test_full_equity_uses_best_depth_and_vtt_deltas():
    dec = FrameDecoder(Lookup())
    key = "NSE_EQ|INE002A01018"
    q = StubQuote(ltp=100.5, cp=99.0, bid=100.45, ask=100.55, vtt=1000, oi=0, atp=100.2)
    t = dec.decode(response(pb.live_feed, {key: feed_for(key, "full", q)})).ticks[0]
    assert (t.bid, t.ask) == (Decimal("100.45"), Decimal("100.55"))
    assert t.cum_volume == 1000 and t.volume == 0
    assert len(t.extra["depth"]) == 5 and t.extra["depth"][1]["bid"] == Decimal("100.4")
    assert t.extra["atp"] == Decimal("100.2") and t.extra["day"]["close"] == Decimal("100.5")
    q.vtt = 1075
    assert dec.decode(response(pb.live_feed, {key: feed_for(key, "full", q)})).ticks[0].volume == 75


def test_full_index_feed():
    key = "NSE_INDEX|Nifty 50"
    q = StubQuote(ltp=24512.3, cp=24400.0)
    t = FrameDecoder(Lookup()).decode(response(pb.live_feed, {key: feed_for(key, "full", q)})).ticks[0]
    assert t.symbol == "NIFTY" and t.ltp == Decimal("24512.3") and t.bid == t.ask == t.ltp
    assert t.extra["day"]["open"] == Decimal("24400")


def test_option_greeks_mode():
    key = "NSE_FO|43885"
    q = StubQuote(ltp=152.4, cp=140.0, bid=152.3, ask=152.5, vtt=50_000, oi=1_200_000, iv=0.1432, delta=0.52)
    t = (
        FrameDecoder(Lookup())
        .decode(response(pb.live_feed, {key: feed_for(key, "option_greeks", q)}))
        .ticks[0]
    )
    assert t.extra["mode"] == "option_greeks" and t.extra["greeks"]["delta"] == pytest.approx(0.52)
    assert t.extra["oi"] == 1_200_000 and t.extra["iv"] == pytest.approx(0.1432)
    assert (t.bid, t.ask) == (Decimal("152.3"), Decimal("152.5")) and t.cum_volume == 50_000


def test_unknown_key_is_reported_not_fatal():
    known = "NSE_EQ|INE002A01018"
    feeds = {
        known: feed_for(known, "ltpc", StubQuote(ltp=1.0)),
        "NSE_EQ|NOPE": feed_for("x", "ltpc", StubQuote(ltp=2.0)),
    }
    frame = FrameDecoder(Lookup()).decode(response(pb.live_feed, feeds))
    assert [t.symbol for t in frame.ticks] == ["RELIANCE"] and frame.unknown_keys == ["NSE_EQ|NOPE"]


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"\x08\x07", b"not a protobuf at all \x00\x01"])
def test_malformed_bytes_raise_malformed_frame(data):
    with pytest.raises(MalformedFrame):
        FrameDecoder(Lookup()).decode(data)


# ------------------------------------------------------------------ the committed generated module

PROTO_DIR = Path(__file__).resolve().parents[3] / "backend" / "domain" / "market" / "upstox_feed"


def test_generated_module_matches_the_committed_proto():
    """Every message field (name, number) and enum value of the .proto is in the _pb2 descriptor."""
    text = re.sub(r"//[^\n]*", "", (PROTO_DIR / "MarketDataFeedV3.proto").read_text())
    blocks = re.findall(r"(message|enum)\s+(\w+)\s*\{(.*?)\n\}", text, flags=re.S)
    assert len(blocks) >= 15
    for kind, name, body in blocks:
        if kind == "enum":
            enum = pb.DESCRIPTOR.enum_types_by_name[name]
            declared = {n: int(v) for n, v in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)}
            assert {v.name: v.number for v in enum.values} == declared, name
        else:
            msg = pb.DESCRIPTOR.message_types_by_name[name]
            declared = {n: int(v) for n, v in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)}
            assert {f.name: f.number for f in msg.fields} == declared, name


def test_regenerating_gives_the_committed_module(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc")  # dev tool (requirements-dev.txt)
    rc = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"--python_out={tmp_path}", str(PROTO_DIR / "MarketDataFeedV3.proto")]
    )
    assert rc == 0
    fresh = (tmp_path / "MarketDataFeedV3_pb2.py").read_text()
    committed = (PROTO_DIR / "MarketDataFeedV3_pb2.py").read_text()
    pick = re.compile(r"AddSerializedFile\((b'.*?')\)", re.S)
    assert pick.search(fresh).group(1) == pick.search(committed).group(1), "run `make proto`"
