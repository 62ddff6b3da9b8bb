"""The audit chain: no lock held across a caller's transaction, racing writers, and the anchor."""

import threading

import pytest
from sqlalchemy import delete, select

from backend.extensions import db
from backend.models import AuditLog
from backend.services import audit
from tests.conftest import USING_POSTGRES


def _write(app, n, action, hold: threading.Event | None = None, started: threading.Event | None = None):
    with app.app_context():
        for i in range(n):
            audit.record(action, details={"i": i})
            if hold is None:
                db.session.commit()
        if hold is not None:
            started.set()
            hold.wait(30)  # an open transaction holding unchained rows, like a slow broker reconcile
            db.session.commit()
        db.session.remove()


@pytest.mark.skipif(not USING_POSTGRES, reason="SQLite serialises every writer by design (BEGIN IMMEDIATE)")
def test_a_long_transaction_with_audit_rows_does_not_block_other_writers(app):
    hold, started, other_done = threading.Event(), threading.Event(), threading.Event()
    slow = threading.Thread(target=_write, args=(app, 60, "broker.reconcile", hold, started))
    slow.start()
    assert started.wait(30)

    def logins():
        _write(app, 12, "auth.login_failed")
        other_done.set()

    fast = threading.Thread(target=logins)
    fast.start()
    # the 12 commits finish while the 60-row transaction is still open (it waits for us)
    finished_while_open = other_done.wait(20)
    hold.set()
    slow.join(30)
    fast.join(30)
    assert finished_while_open
    with app.app_context():
        report = audit.verify_chain()
        assert report.ok, report
        assert report.checked == 72


def test_racing_writers_form_one_unbroken_chain(app):
    threads = [threading.Thread(target=_write, args=(app, 15, f"w{n}")) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with app.app_context():
        report = audit.verify_chain()
        assert report.ok, report
        assert report.checked == 60
        seqs = db.session.scalars(select(AuditLog.seq).order_by(AuditLog.seq)).all()
        assert seqs == list(range(1, 61))


def test_a_rolled_back_transaction_leaves_no_audit_row(app):
    with app.app_context():
        audit.record("kept")
        db.session.commit()
        audit.record("discarded")
        db.session.rollback()
        assert [r.action for r in db.session.scalars(select(AuditLog))] == ["kept"]
        assert audit.verify_chain().ok


def test_deleting_the_newest_rows_is_detected(app):
    runner = app.test_cli_runner()
    with app.app_context():
        for i in range(5):
            audit.record("user.update", details={"i": i})
            db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context():
        newest = db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()))
        db.session.execute(delete(AuditLog).where(AuditLog.id >= newest - 1))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "rows were deleted" in result.output


def test_rewriting_the_whole_chain_is_detected(app):
    with app.app_context():
        for i in range(3):
            audit.record("order.place", details={"i": i})
            db.session.commit()
        # an attacker recomputes every hash after editing a row: the chain alone looks fine
        rows = db.session.scalars(select(AuditLog).order_by(AuditLog.seq)).all()
        rows[1].details = {"i": "forged"}
        prev = audit.GENESIS
        for row in rows:
            row.prev_hash = prev
            row.hash = prev = audit.compute_hash(row)
        db.session.commit()
        report = audit.verify_chain()
        assert not report.ok and "rewritten" in report.reason


def test_a_forged_or_missing_anchor_is_detected(app):
    with app.app_context():
        audit.record("x")
        db.session.commit()
        path = audit.anchor_path()
        original = path.read_text()
        path.write_text(original.replace('"count": 1', '"count": 0'))
        assert "signature" in audit.verify_chain().reason
        path.unlink()
        assert "missing" in audit.verify_chain().reason
        assert app.test_cli_runner().invoke(args=["audit", "anchor"]).exit_code == 0
        assert audit.verify_chain().ok


def test_rows_left_unchained_by_a_crash_are_sealed_later(app):
    with app.app_context():
        audit.record("a")
        db.session.info.pop("audit_pending")  # as if the process died right after the commit
        db.session.commit()
        assert audit.pending_count() == 1
        report = audit.verify_chain()
        assert report.ok and report.checked == 1 and audit.pending_count() == 0
