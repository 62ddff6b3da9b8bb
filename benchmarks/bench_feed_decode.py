"""Upstox V3 feed decode benchmark: frames onto the tick bus vs parsing them with protobuf alone.

Both sides get the same pre-serialized ``FeedResponse`` frames (built with the compiled
MarketDataFeedV3 module, the bytes the socket receives), in one process, alternating rounds:

* ``protobuf``: ``FeedResponse.FromString(frame)`` only (the floor; upb builds Python objects
  for sub-messages lazily, so this barely touches the fields);
* ``protobuf + reads``: the same parse plus reading, as raw floats and ints, every field our
  decoder reads (the fairest "protobuf alone" baseline: what any consumer must at least do);
* ``ours``: ``FrameDecoder.decode(frame)`` (parse + map keys to symbols + Decimal prices + volume
  deltas + extras) and ``TickBus.publish(ticks)`` to one no-op subscriber: what the websocket thread
  does per frame before the feed service's delivery (cache, Socket.IO) starts.

Frames per second for each, ticks per second, and the ratio (ours / protobuf, < 1: slower).

    .venv/bin/python benchmarks/bench_feed_decode.py [--frames 2000] [--keys 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
from backend.domain.market.upstox_feed import FrameDecoder, protocol
from backend.domain.market.upstox_feed import MarketDataFeedV3_pb2 as pb
from backend.realtime.bus import TickBus
from tests.stubs.upstox_ws_stub import StubQuote, feed_for, response


class _Keys:
    def __init__(self, reg: InstrumentRegistry) -> None:
        self.reg = reg

    def symbol_for(self, key: str) -> str | None:
        ins = self.reg.by_key(key)
        return ins.trading_symbol if ins else None


def frames_for(mode: str, n: int, keys_per_frame: int, reg: InstrumentRegistry) -> list[bytes]:
    keys = [i.instrument_key for i in reg if i.instrument_type in ("EQ", "INDEX")][:keys_per_frame]
    out = []
    for i in range(n):
        feeds = {}
        for j, k in enumerate(keys):
            px = 1000.0 + j + i * 0.05
            q = StubQuote(
                ltp=round(px, 2),
                cp=1000.0,
                ltt=1_763_616_600_000 + i * 250,
                ltq=1 + i % 7,
                bid=round(px - 0.05, 2),
                ask=round(px + 0.05, 2),
                vtt=10_000 + i * 3,
            )
            feeds[k] = feed_for(k, mode, q)
        out.append(response(pb.live_feed, feeds, ts_ms=1_763_616_600_000 + i * 250))
    return out


def run_protobuf(frames: list[bytes]) -> float:
    parse = pb.FeedResponse.FromString
    t0 = time.perf_counter()
    for f in frames:
        parse(f)
    return time.perf_counter() - t0


def _read(feed) -> tuple:
    union = feed.WhichOneof("FeedUnion")
    if union == "ltpc":
        c = feed.ltpc
        return (c.ltp, c.ltt, c.ltq, c.cp)
    if union == "fullFeed":
        m = feed.fullFeed.marketFF
        c = m.ltpc
        depth = [(q.bidQ, q.bidP, q.askQ, q.askP) for q in m.marketLevel.bidAskQuote]
        g = m.optionGreeks
        bars = [(b.interval, b.open, b.high, b.low, b.close, b.vol) for b in m.marketOHLC.ohlc]
        return (c.ltp, c.ltt, c.ltq, c.cp, depth, m.atp, m.vtt, m.oi, m.iv, m.tbq, m.tsq, g.delta, bars)
    f = feed.firstLevelWithGreeks
    c, q, g = f.ltpc, f.firstDepth, f.optionGreeks
    return (c.ltp, c.ltt, c.ltq, c.cp, q.bidP, q.askP, f.vtt, f.oi, f.iv, g.delta, g.theta, g.gamma, g.vega)


def run_protobuf_reads(frames: list[bytes]) -> float:
    parse = pb.FeedResponse.FromString
    t0 = time.perf_counter()
    for f in frames:
        msg = parse(f)
        for _key, feed in msg.feeds.items():
            _read(feed)
    return time.perf_counter() - t0


def run_ours(frames: list[bytes], reg: InstrumentRegistry) -> tuple[float, int]:
    protocol._DEC_CACHE.clear()  # every round starts cold: no price memoised by an earlier round
    decoder = FrameDecoder(_Keys(reg))
    bus = TickBus()
    seen = [0]

    def sink(tick) -> None:
        seen[0] += 1

    bus.subscribe(sink, name="bench")
    t0 = time.perf_counter()
    for f in frames:
        bus.publish(decoder.decode(f).ticks)
    return time.perf_counter() - t0, seen[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=5, help="instrument keys per frame")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    reg = InstrumentRegistry(seed_instruments())
    print(f"{args.frames} frames x {args.keys} keys, {args.rounds} alternating rounds, median shown\n")
    print(
        "| mode | protobuf parse (frames/s) | protobuf parse + reads (frames/s) "
        "| ours: decode + tick bus (frames/s) | ours (ticks/s) | ours / parse | ours / parse + reads |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("ltpc", "full", "option_greeks"):
        frames = frames_for(mode, args.frames, args.keys, reg)
        run_protobuf(frames[:100])  # warm-up
        run_protobuf_reads(frames[:100])
        run_ours(frames[:100], reg)
        pb_t, rd_t, our_t, ticks = [], [], [], 0
        for _ in range(args.rounds):
            pb_t.append(run_protobuf(frames))
            rd_t.append(run_protobuf_reads(frames))
            t, ticks = run_ours(frames, reg)
            our_t.append(t)
        pb_fps = args.frames / statistics.median(pb_t)
        rd_fps = args.frames / statistics.median(rd_t)
        our_fps = args.frames / statistics.median(our_t)
        tps = ticks / statistics.median(our_t)
        print(
            f"| {mode} | {pb_fps:,.0f} | {rd_fps:,.0f} | {our_fps:,.0f} | {tps:,.0f} "
            f"| {our_fps / pb_fps:.3f} | {our_fps / rd_fps:.2f} |"
        )


if __name__ == "__main__":
    main()
