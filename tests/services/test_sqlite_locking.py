"""Issue 17: ``database is locked`` on SQLite after a restart.

Every transaction used to start with BEGIN IMMEDIATE, so each read queued for SQLite's one write
lock and the background threads starting together after a restart (tick bus, alerts, job recovery,
deployment resume) waited past busy_timeout. Reads now take no lock (WAL, deferred BEGIN); the
write lock is taken at the first write or row lock, and money still moves one writer at a time.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from tests.conftest import USING_POSTGRES

WAIT = 20  # seconds a thread waits for the other before the test gives up (a deadlock, not timing)


def _account(app, user_id: int) -> int:
    from backend.extensions import db
    from backend.models import User
    from backend.services.trading import accounts

    with app.app_context():
        acct = accounts.default_account(db.session.get(User, user_id))
        db.session.commit()
        return acct.id


def _run(*targets) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        return inner

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * WAIT)
    assert not any(t.is_alive() for t in threads), "a thread is still waiting on a lock"
    return errors


@pytest.mark.skipif(USING_POSTGRES, reason="SQLite's locking")
def test_the_file_database_runs_in_wal_mode(app):
    from backend.extensions import db

    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_an_open_read_transaction_does_not_block_a_writer(app, make_user):
    from backend.extensions import db
    from backend.models import User

    uid, _ = make_user()
    reading, wrote = threading.Event(), threading.Event()
    seen: list[bool] = []

    def reader():  # a background thread that read and has not ended its transaction yet
        with app.app_context():
            db.session.get(User, uid)
            reading.set()
            seen.append(wrote.wait(WAIT))
            db.session.rollback()

    def writer():
        assert reading.wait(WAIT)
        with app.app_context():
            db.session.execute(
                text("UPDATE users SET email = 'renamed@example.com' WHERE id = :i"), {"i": uid}
            )
            db.session.commit()
        wrote.set()

    assert _run(reader, writer) == []
    assert seen == [True], "the writer waited for the reader's transaction"
    with app.app_context():
        assert db.session.scalar(select(User.email).where(User.id == uid)) == "renamed@example.com"


def test_a_writer_whose_snapshot_is_stale_still_locks_the_account_and_sees_the_newest_cash(app, make_user):
    """Both transactions read first (a request's token check), one commits a money change, then the
    other locks the account: it must wait for nothing, fail with nothing, and build on the new cash.
    A plain deferred transaction would fail here on SQLite (SQLITE_BUSY_SNAPSHOT)."""
    from backend.extensions import db
    from backend.models.trading import TradingAccount
    from backend.services.trading.common import lock_account

    uid, _ = make_user()
    acct_id = _account(app, uid)
    with app.app_context():
        start = db.session.get(TradingAccount, acct_id).cash
    both_read = threading.Barrier(2, timeout=WAIT)
    first_done = threading.Event()

    def txn(first: bool):
        def body():
            with app.app_context():
                db.session.scalar(select(TradingAccount.cash).where(TradingAccount.id == acct_id))
                both_read.wait()
                if not first:
                    assert first_done.wait(WAIT)
                acct = lock_account(acct_id)
                acct.cash = acct.cash + Decimal("1.25")
                db.session.commit()
                if first:
                    first_done.set()

        return body

    assert _run(txn(True), txn(False)) == []
    with app.app_context():
        assert db.session.get(TradingAccount, acct_id).cash == start + Decimal("2.50")


def test_racing_money_writers_never_lose_an_update_nor_see_a_lock_error(app, make_user):
    from backend.extensions import db
    from backend.models.trading import TradingAccount
    from backend.services.trading.common import lock_account

    uid, _ = make_user()
    acct_id = _account(app, uid)
    with app.app_context():
        start = db.session.get(TradingAccount, acct_id).cash
    threads, rounds = 6, 5
    go = threading.Barrier(threads, timeout=WAIT)

    def worker():
        go.wait()
        with app.app_context():
            for _ in range(rounds):
                db.session.get(TradingAccount, acct_id)  # a read before the lock, as requests do
                acct = lock_account(acct_id)
                acct.cash = acct.cash - Decimal("0.01")
                db.session.commit()

    assert _run(*[worker] * threads) == []
    with app.app_context():
        assert db.session.get(TradingAccount, acct_id).cash == start - Decimal("0.01") * threads * rounds


def test_deployment_resume_holds_no_lock_while_it_warms_up(app, client, trader, monkeypatch):
    """After a restart, deployment resume fetched history for every deployment inside one write
    transaction: every request waited for it. A write must go through during the warm-up."""
    from backend.extensions import db
    from backend.models import DeploymentLog
    from backend.services import deployments

    uid, headers = trader
    monkeypatch.setattr(deployments, "_warmup_bars", lambda *a: [])
    body = {
        "name": "live", "strategy": "sma_crossover", "params": {"fast": 2, "slow": 3},
        "symbols": ["RELIANCE"], "interval": "1m", "quantity": 5,
    }  # fmt: skip
    sid = client.post("/api/v1/strategies", json=body, headers=headers).get_json()["id"]
    dep = client.post(f"/api/v1/strategies/{sid}/deploy", json={}, headers=headers)
    assert dep.status_code == 201, dep.get_json()
    dep_id = dep.get_json()["id"]
    engine = deployments.engine(app)
    engine.stop(dep_id)  # as after a restart: running in the database, not in memory
    warming, wrote = threading.Event(), threading.Event()
    seen: list[bool] = []

    def slow_warmup(symbol, interval, strategy):
        warming.set()
        seen.append(wrote.wait(WAIT))
        return []

    monkeypatch.setattr(deployments, "_warmup_bars", slow_warmup)
    resumed: list[int] = []

    def resume():
        resumed.append(deployments.resume_all(app))

    def writer():
        assert warming.wait(WAIT)
        with app.app_context():
            db.session.execute(text("UPDATE users SET email = 'w@example.com' WHERE id = :u"), {"u": uid})
            db.session.commit()
        wrote.set()

    try:
        assert _run(resume, writer) == []
        assert resumed == [1] and seen == [True]
        assert dep_id in engine.live
    finally:
        engine.stop(dep_id)
    with app.app_context():
        events = db.session.scalars(select(DeploymentLog.event).where(DeploymentLog.deployment_id == dep_id))
        assert list(events)[-1] == "resumed"
