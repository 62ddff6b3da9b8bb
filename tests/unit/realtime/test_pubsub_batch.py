"""The batching Socket.IO queue manager: one Redis message per batch, unpacked into ordinary emits."""

from __future__ import annotations

import json
import threading

import pytest
import socketio

from backend.realtime.pubsub import BatchingRedisManager


@pytest.fixture
def manager(monkeypatch):
    """A manager whose Redis publish is recorded instead of sent (nothing connects)."""
    sent: list[dict] = []
    monkeypatch.setattr(socketio.RedisManager, "_publish", lambda self, data: sent.append(data))
    m = BatchingRedisManager("redis://127.0.0.1:1/0", channel="test", write_only=True)
    return m, sent


def _emit(n: int) -> dict:
    return {"method": "emit", "event": "e", "data": [n], "room": "user:1", "host_id": "sender"}


def test_outside_a_batch_every_publish_goes_out_at_once(manager):
    m, sent = manager
    m._publish(_emit(1))
    m._publish(_emit(2))
    assert sent == [_emit(1), _emit(2)]


def test_a_batch_goes_out_as_one_message_at_the_end_in_order(manager):
    m, sent = manager
    with m.batch():
        m._publish(_emit(1))
        with m.batch():  # nested: joins the outer batch
            m._publish(_emit(2))
        m._publish(_emit(3))
        assert sent == []
    assert sent == [{"method": "batch", "host_id": m.host_id, "messages": [_emit(1), _emit(2), _emit(3)]}]


def test_a_batch_of_one_is_published_as_the_plain_message_and_an_empty_batch_sends_nothing(manager):
    m, sent = manager
    with m.batch():
        m._publish(_emit(1))
    with m.batch():
        pass
    assert sent == [_emit(1)]


def test_a_batch_is_published_even_when_its_block_raises(manager):
    m, sent = manager
    with pytest.raises(RuntimeError), m.batch():
        m._publish(_emit(1))
        m._publish(_emit(2))
        raise RuntimeError("after the commit, the emits still go out")
    assert [x["method"] for x in sent] == ["batch"]


def test_batches_are_per_thread(manager):
    m, sent = manager
    with m.batch():
        t = threading.Thread(target=m._publish, args=(_emit(9),))
        t.start()
        t.join()
        assert sent == [_emit(9)]  # another thread's publish is not swallowed into this batch
        m._publish(_emit(1))
    assert sent[1] == _emit(1)


def test_unpack_yields_a_foreign_batch_members_and_skips_this_hosts_own(manager):
    m, _ = manager
    foreign = json.dumps({"method": "batch", "host_id": "other", "messages": [_emit(1), _emit(2), "junk"]})
    own = json.dumps({"method": "batch", "host_id": m.host_id, "messages": [_emit(1)]})
    assert list(m.unpack(foreign)) == [_emit(1), _emit(2)]
    assert list(m.unpack(own)) == []


def test_unpack_passes_plain_and_undecodable_messages_through(manager):
    m, _ = manager
    assert list(m.unpack(json.dumps(_emit(1)).encode())) == [_emit(1)]
    assert list(m.unpack(b"\xffnot json")) == [b"\xffnot json"]
