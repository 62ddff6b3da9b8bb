"""Encrypted broker-token store (Fernet through MultiFernet; keys newest first).

Each entry (the access token *and* its metadata: broker, user, account, issue/expiry times,
scopes) is serialised to JSON and encrypted as one Fernet token, so neither Redis nor the database
ever holds plaintext. Backends:

* Redis (default when ``REDIS_URL`` is set): key ``tp:broker-token:<broker>:<user>:<account>``,
  TTL = seconds until the token's expiry, so an expired token is simply gone.
* Database: ``broker_tokens.ciphertext``; an expired row is deleted when read and by
  ``purge_expired``.

Decryption failures (a removed/wrong key, tampered ciphertext, an entry moved to another key) raise
``TokenUnreadable`` whose message never contains key material or ciphertext. ``rotate_key``
re-encrypts everything under the newest key and reports (does not raise on) unreadable entries.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from backend.domain.errors import BrokerTokenExpired, ServiceUnavailable

log = logging.getLogger(__name__)

REDIS_PREFIX = "tp:broker-token:"


class TokenUnreadable(BrokerTokenExpired):
    """A stored token cannot be decrypted: key removed/wrong, or the ciphertext was altered."""

    code = "BROKER_TOKEN_UNREADABLE"


class TokenStoreMisconfigured(ServiceUnavailable):
    code = "TOKEN_STORE_MISCONFIGURED"


@dataclass(frozen=True, slots=True)
class TokenEntry:
    token: str = field(repr=False)
    broker: str
    user_id: int
    account_id: int | None
    issued_at: datetime
    expires_at: datetime
    scopes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return entry_key(self.broker, self.user_id, self.account_id)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "token": self.token,
                "broker": self.broker,
                "user_id": self.user_id,
                "account_id": self.account_id,
                "issued_at": self.issued_at.astimezone(UTC).isoformat(),
                "expires_at": self.expires_at.astimezone(UTC).isoformat(),
                "scopes": list(self.scopes),
                "meta": self.meta,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenEntry:
        d = json.loads(raw)
        return cls(
            token=d["token"],
            broker=d["broker"],
            user_id=int(d["user_id"]),
            account_id=d.get("account_id"),
            issued_at=datetime.fromisoformat(d["issued_at"]),
            expires_at=datetime.fromisoformat(d["expires_at"]),
            scopes=tuple(d.get("scopes") or ()),
            meta=d.get("meta") or {},
        )


def entry_key(broker: str, user_id: int, account_id: int | None) -> str:
    return f"{broker}:{int(user_id)}:{'-' if account_id is None else int(account_id)}"


@dataclass
class RotationReport:
    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)  # entry keys that no configured key opens

    @property
    def ok(self) -> bool:
        return not self.unreadable


def build_fernet(keys: list[str]) -> MultiFernet:
    """MultiFernet over ``keys`` (newest first: it encrypts with the first, decrypts with any)."""
    if not keys:
        raise TokenStoreMisconfigured("TOKEN_ENCRYPTION_KEYS is empty: broker tokens cannot be stored.")
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise TokenStoreMisconfigured(
            "TOKEN_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)."
        ) from exc


class _RedisBackend:
    name = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client

    def put(self, key: str, blob: bytes, expires_at: datetime, now: datetime) -> None:
        ttl = max(1, math.ceil((expires_at - now).total_seconds()))
        self.client.set(REDIS_PREFIX + key, blob, ex=ttl)

    def get(self, key: str) -> bytes | None:
        return self.client.get(REDIS_PREFIX + key)

    def delete(self, key: str) -> bool:
        return bool(self.client.delete(REDIS_PREFIX + key))

    def items(self) -> Iterator[tuple[str, bytes]]:
        for raw_key in self.client.scan_iter(match=REDIS_PREFIX + "*", count=500):
            k = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            blob = self.client.get(k)
            if blob is not None:
                yield k[len(REDIS_PREFIX) :], blob

    def replace(self, key: str, blob: bytes) -> None:
        # keep the remaining TTL: rotation must not extend a token's life
        self.client.set(REDIS_PREFIX + key, blob, keepttl=True)

    def purge_expired(self, now: datetime) -> int:
        return 0  # Redis expires keys itself


class _DatabaseBackend:
    name = "database"

    def _session(self):
        from backend.extensions import db

        return db.session

    def put(self, key: str, blob: bytes, expires_at: datetime, now: datetime) -> None:
        from backend.models.broker import BrokerToken

        s = self._session()
        row = s.query(BrokerToken).filter_by(entry_key=key).one_or_none()
        if row is None:
            row = BrokerToken(entry_key=key, ciphertext=blob.decode(), expires_at=expires_at)
            s.add(row)
        else:
            row.ciphertext, row.expires_at = blob.decode(), expires_at
        s.commit()

    def get(self, key: str) -> bytes | None:
        from backend.models.broker import BrokerToken

        row = self._session().query(BrokerToken).filter_by(entry_key=key).one_or_none()
        return None if row is None else row.ciphertext.encode()

    def delete(self, key: str) -> bool:
        from backend.models.broker import BrokerToken

        s = self._session()
        n = s.query(BrokerToken).filter_by(entry_key=key).delete()
        s.commit()
        return bool(n)

    def items(self) -> Iterator[tuple[str, bytes]]:
        from backend.models.broker import BrokerToken

        rows = self._session().query(BrokerToken.entry_key, BrokerToken.ciphertext).all()
        for k, c in rows:
            yield k, c.encode()

    def replace(self, key: str, blob: bytes) -> None:
        from backend.models.broker import BrokerToken

        s = self._session()
        s.query(BrokerToken).filter_by(entry_key=key).update({"ciphertext": blob.decode()})
        s.commit()

    def purge_expired(self, now: datetime) -> int:
        from backend.models.broker import BrokerToken

        s = self._session()
        n = s.query(BrokerToken).filter(BrokerToken.expires_at <= now).delete()
        s.commit()
        return n


class TokenStore:
    """Created unbound in ``backend.extensions``; ``init_app`` picks the keys and the backend."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._fernet: MultiFernet | None = None
        self._backend: _RedisBackend | _DatabaseBackend | None = None
        self.clock = clock or (lambda: datetime.now(UTC))

    def init_app(self, app: Any) -> None:
        self.configure(app.config.get("TOKEN_ENCRYPTION_KEYS") or [], self._pick_backend(app))
        app.extensions["token_store"] = self

    @staticmethod
    def _pick_backend(app: Any) -> _RedisBackend | _DatabaseBackend:
        from backend.extensions import redis_store

        choice = app.config.get("TOKEN_STORE_BACKEND", "auto")
        if choice == "redis" or (choice == "auto" and redis_store.client is not None):
            if redis_store.client is None:
                raise TokenStoreMisconfigured("TOKEN_STORE_BACKEND=redis needs REDIS_URL.")
            return _RedisBackend(redis_store.client)
        return _DatabaseBackend()

    def configure(self, keys: list[str], backend: _RedisBackend | _DatabaseBackend | None = None) -> None:
        """(Re)load the keys; tests use this to simulate a removed or wrong key."""
        self._fernet = build_fernet(list(keys))
        if backend is not None:
            self._backend = backend

    @property
    def backend_name(self) -> str:
        return self._ready()[1].name

    def _ready(self) -> tuple[MultiFernet, _RedisBackend | _DatabaseBackend]:
        if self._fernet is None or self._backend is None:
            raise TokenStoreMisconfigured("The token store is not bound to an app (TokenStore.init_app).")
        return self._fernet, self._backend

    # ------------------------------------------------------------------ operations

    def put(self, entry: TokenEntry) -> None:
        fernet, backend = self._ready()
        now = self.clock()
        if entry.expires_at <= now:
            raise BrokerTokenExpired("The broker token is already expired; log in to the broker again.")
        backend.put(entry.key, fernet.encrypt(entry.to_json()), entry.expires_at, now)
        log.info("broker token stored", extra={"entry": entry.key, "backend": backend.name})

    def _decrypt(self, key: str, blob: bytes) -> TokenEntry:
        fernet, _ = self._ready()
        try:
            entry = TokenEntry.from_json(fernet.decrypt(blob))
        except InvalidToken:
            raise TokenUnreadable(
                "The stored broker token cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS "
                "(the key that encrypted it was removed or is wrong, or the stored value was altered). "
                "Connect the broker again.",
                details={"entry": key},
            ) from None
        if entry.key != key:
            # a ciphertext copied onto another user's entry decrypts but must not be accepted
            raise TokenUnreadable(
                "A stored broker token does not belong to its entry.", details={"entry": key}
            )
        return entry

    def get(self, broker: str, user_id: int, account_id: int | None = None) -> TokenEntry | None:
        """The live entry, or None when absent or expired (an expired entry is deleted)."""
        _, backend = self._ready()
        key = entry_key(broker, user_id, account_id)
        blob = backend.get(key)
        if blob is None:
            return None
        entry = self._decrypt(key, blob)
        if entry.expires_at <= self.clock():
            backend.delete(key)
            return None
        return entry

    def require(self, broker: str, user_id: int, account_id: int | None = None) -> TokenEntry:
        entry = self.get(broker, user_id, account_id)
        if entry is None:
            raise BrokerTokenExpired(
                f"No valid {broker} session: it expired (Upstox tokens end at 03:30 IST) or was revoked. "
                "Log in again via GET /api/v1/broker/upstox/authorize.",
                details={"relogin": "/api/v1/broker/upstox/authorize"},
            )
        return entry

    def delete(self, broker: str, user_id: int, account_id: int | None = None) -> bool:
        _, backend = self._ready()
        return backend.delete(entry_key(broker, user_id, account_id))

    def raw(self, broker: str, user_id: int, account_id: int | None = None) -> bytes | None:
        """The stored ciphertext as is (tests and diagnostics)."""
        _, backend = self._ready()
        return backend.get(entry_key(broker, user_id, account_id))

    def purge_expired(self) -> int:
        _, backend = self._ready()
        return backend.purge_expired(self.clock())

    def rotate_key(self) -> RotationReport:
        """Re-encrypt every entry under the newest key; unreadable entries are reported, not fatal."""
        fernet, backend = self._ready()
        report = RotationReport()
        for key, blob in list(backend.items()):
            try:
                fresh = fernet.rotate(blob)
            except InvalidToken:
                report.unreadable.append(key)
                log.warning("broker token unreadable during key rotation", extra={"entry": key})
                continue
            backend.replace(key, fresh)
            report.rotated += 1
        return report
