"""Encrypted broker-token store: no plaintext at rest, rotation, expiry, wrong keys, tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from backend.domain.errors import BrokerTokenExpired
from backend.security.token_store import (
    REDIS_PREFIX,
    TokenEntry,
    TokenStore,
    TokenStoreMisconfigured,
    TokenUnreadable,
    _DatabaseBackend,
    _RedisBackend,
)
from tests.conftest import USING_REDIS

SECRET = "ya29.PLAINTEXT-ACCESS-TOKEN-0123456789"
K1, K2, K3 = (Fernet.generate_key().decode() for _ in range(3))
NOW = datetime(2025, 11, 20, 9, 0, tzinfo=UTC)

BACKENDS = ["database"] + (["redis"] if USING_REDIS else [])


def entry(user_id: int = 1, account_id: int | None = 7, token: str = SECRET, hours: float = 10) -> TokenEntry:
    return TokenEntry(
        token=token,
        broker="upstox",
        user_id=user_id,
        account_id=account_id,
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=hours),
        scopes=("orders", "portfolio"),
        meta={"broker_user_id": "AB1234"},
    )


@pytest.fixture(params=BACKENDS)
def store(request, app):
    with app.app_context():
        if request.param == "redis":
            from backend.extensions import redis_store

            backend = _RedisBackend(redis_store.client)
        else:
            backend = _DatabaseBackend()
        s = TokenStore(clock=lambda: NOW)
        s.configure([K1], backend)
        yield s


def raw_at_rest(store: TokenStore, e: TokenEntry) -> bytes:
    """What the backend itself holds: the Redis value or the database column, read directly."""
    if store.backend_name == "redis":
        from backend.extensions import redis_store

        return redis_store.client.get(REDIS_PREFIX + e.key)
    from sqlalchemy import text

    from backend.extensions import db

    value = db.session.execute(
        text("SELECT ciphertext FROM broker_tokens WHERE entry_key = :k"), {"k": e.key}
    ).scalar()
    return value.encode()


def test_round_trip_keeps_token_and_metadata(store):
    e = entry()
    store.put(e)
    got = store.get("upstox", 1, 7)
    assert got == e and got.token == SECRET and got.scopes == ("orders", "portfolio")
    assert got.meta == {"broker_user_id": "AB1234"}
    assert SECRET not in repr(got)  # the token never shows in reprs (and so in logs)


def test_raw_value_at_rest_contains_no_plaintext(store):
    e = entry()
    store.put(e)
    raw = raw_at_rest(store, e)
    assert raw and SECRET.encode() not in raw
    for meta in (b"AB1234", b"upstox", b"orders", b"portfolio"):
        assert meta not in raw  # metadata is encrypted too
    assert Fernet(K1.encode()).decrypt(raw)  # it is a Fernet token under the current key


def test_expired_token_is_gone(store):
    store.put(entry(hours=1))
    store.clock = lambda: NOW + timedelta(hours=2)
    assert store.get("upstox", 1, 7) is None
    if store.backend_name == "database":
        assert store.raw("upstox", 1, 7) is None  # deleted on read
    with pytest.raises(BrokerTokenExpired) as e:
        store.require("upstox", 1, 7)
    assert e.value.details["relogin"] == "/api/v1/broker/upstox/authorize"


def test_already_expired_token_is_refused(store):
    with pytest.raises(BrokerTokenExpired):
        store.put(entry(hours=-1))
    assert store.raw("upstox", 1, 7) is None


@pytest.mark.skipif(not USING_REDIS, reason="Redis run only")
def test_redis_ttl_is_the_token_expiry(app):
    from backend.extensions import redis_store

    with app.app_context():
        s = TokenStore(clock=lambda: NOW)
        s.configure([K1], _RedisBackend(redis_store.client))
        s.put(entry(hours=5))
        ttl = redis_store.client.ttl(REDIS_PREFIX + entry().key)
        assert ttl == 5 * 3600  # seconds until expiry, measured from the store's clock


def test_database_purge_expired(app):
    with app.app_context():
        s = TokenStore(clock=lambda: NOW)
        s.configure([K1], _DatabaseBackend())
        s.put(entry(user_id=1, hours=1))
        s.put(entry(user_id=2, hours=5))
        s.clock = lambda: NOW + timedelta(hours=2)
        assert s.purge_expired() == 1
        assert s.raw("upstox", 1, 7) is None and s.get("upstox", 2, 7).user_id == 2


def test_wrong_or_removed_key_is_a_clear_error(store):
    e = entry()
    store.put(e)
    raw = raw_at_rest(store, e)
    store.configure([K2])  # K1 removed
    with pytest.raises(TokenUnreadable) as err:
        store.get("upstox", 1, 7)
    msg = err.value.message
    assert "cannot be decrypted" in msg and "TOKEN_ENCRYPTION_KEYS" in msg
    assert err.value.code == "BROKER_TOKEN_UNREADABLE"
    assert raw.decode() not in msg and K1 not in msg and SECRET not in msg


def test_tampered_ciphertext_is_rejected(store, app):
    e = entry()
    store.put(e)
    raw = bytearray(raw_at_rest(store, e))
    raw[40] = ord("A") if raw[40] != ord("A") else ord("B")
    store._backend.replace(e.key, bytes(raw))
    with pytest.raises(TokenUnreadable):
        store.get("upstox", 1, 7)


def test_ciphertext_moved_to_another_entry_is_rejected(store):
    mine, other = entry(user_id=1), entry(user_id=2, token="someone-else")
    store.put(mine)
    store.put(other)
    store._backend.replace(other.key, raw_at_rest(store, mine))
    with pytest.raises(TokenUnreadable):
        store.get("upstox", 2, 7)


def test_rotation_re_encrypts_under_newest_key_and_reports_unreadable(store):
    store.put(entry(user_id=1))
    store.put(entry(user_id=2))
    store.configure([K3])
    store.put(entry(user_id=3))  # written under a key that will be dropped
    store.configure([K2, K1])  # K2 is new, K1 still readable, K3 removed
    report = store.rotate_key()
    assert report.rotated == 2
    assert report.unreadable == ["upstox:3:7"] and not report.ok
    store.configure([K2])  # K1 can now be retired
    assert store.get("upstox", 1, 7).token == SECRET and store.get("upstox", 2, 7).token == SECRET
    assert Fernet(K2.encode()).decrypt(raw_at_rest(store, entry(user_id=1)))


def test_misconfigured_keys():
    with pytest.raises(TokenStoreMisconfigured):
        TokenStore().configure([])
    with pytest.raises(TokenStoreMisconfigured) as e:
        TokenStore().configure(["not-a-fernet-key"])
    assert "not a Fernet key" in e.value.message
    with pytest.raises(TokenStoreMisconfigured):
        TokenStore().get("upstox", 1)  # unbound


def test_cli_rotate_key_reports_without_crashing(app):
    from backend.extensions import token_store

    with app.app_context():
        old_keys = list(app.config["TOKEN_ENCRYPTION_KEYS"])
        try:
            token_store.configure([K1])
            token_store.put(
                TokenEntry(SECRET, "upstox", 5, 9, datetime.now(UTC), datetime.now(UTC) + timedelta(hours=3))
            )
            token_store.configure([K3])
            token_store.put(
                TokenEntry(SECRET, "upstox", 6, 9, datetime.now(UTC), datetime.now(UTC) + timedelta(hours=3))
            )
            token_store.configure([K2, K1])
            result = app.test_cli_runner().invoke(args=["tokens", "rotate-key"])
            assert result.exit_code == 0, result.output
            assert "re-encrypted 1 token(s)" in result.output
            assert "upstox:6:9" in result.output and SECRET not in result.output
        finally:
            token_store.configure(old_keys)
