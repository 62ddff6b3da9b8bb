"""Job lifecycle on the embedded runner: success, failure, cancel (queued and running), worker death
(stale heartbeat) and the per-user cap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.errors import Conflict, RateLimited
from backend.extensions import db
from backend.models.strategies import BacktestJob
from backend.services import jobs

STARTED: dict[str, threading.Event] = {}


@jobs.handler("test_ok")
def _ok(ctx: jobs.JobContext) -> dict:
    for i in range(4):
        ctx.progress(i + 1, 4)
    return {"answer": ctx.params["x"] * 2}


@jobs.handler("test_fail")
def _fail(ctx: jobs.JobContext) -> dict:
    raise ValueError("boom")


@jobs.handler("test_block")
def _block(ctx: jobs.JobContext) -> dict:
    """Runs until cancelled (the cancel flag is the only way out)."""
    STARTED.setdefault(ctx.job_id, threading.Event()).set()
    while not ctx.should_cancel():
        ctx.cancel_event.wait(0.02)
    ctx.check_cancel()
    return {}


@pytest.fixture
def embedded(app):
    runner = jobs.EmbeddedRunner(app, 4)
    jobs.set_runner(app, runner)
    yield runner
    jobs.set_runner(app, None)


def _wait(runner: jobs.EmbeddedRunner, job_id: str) -> str | None:
    db.session.commit()  # SQLite: an open transaction here holds the write lock the worker needs
    return runner.wait(job_id, 30)


def _user(app, make_user) -> int:
    uid, _ = make_user("trader")
    return uid


def test_success_stores_result_and_progress(app, make_user, embedded):
    uid = _user(app, make_user)
    with app.app_context():
        job = jobs.submit(uid, "test_ok", {"x": 21})
        assert job.user_id == uid and job.kind == "test_ok"
        assert _wait(embedded, job.id) == "succeeded"
        db.session.expire_all()
        done = jobs.get_job(uid, job.id)
        assert (done.status, done.progress, done.result, done.error) == (
            "succeeded",
            1.0,
            {"answer": 42},
            None,
        )
        assert done.started_at is not None and done.finished_at is not None


def test_failure_is_recorded_with_reason(app, make_user, embedded):
    uid = _user(app, make_user)
    with app.app_context():
        job = jobs.submit(uid, "test_fail", {})
        assert _wait(embedded, job.id) == "failed"
        db.session.expire_all()
        done = jobs.get_job(uid, job.id)
        assert done.error["code"] == "JOB_CRASHED"
        assert "ValueError: boom" in done.error["message"]


def test_cancel_running_and_queued_jobs(app, make_user):
    uid = _user(app, make_user)
    runner = jobs.EmbeddedRunner(app, 1)  # one worker: the second job stays queued
    jobs.set_runner(app, runner)
    app.config["JOBS_MAX_PER_USER"], cap = 5, app.config["JOBS_MAX_PER_USER"]
    try:
        with app.app_context():
            running = jobs.submit(uid, "test_block", {})
            running_id = running.id
            db.session.commit()
            STARTED.setdefault(running_id, threading.Event()).wait(30)
            queued = jobs.submit(uid, "test_block", {})
            assert jobs.cancel(uid, queued.id).status == "cancelled"  # at once: it never started
            jobs.cancel(uid, running.id)
            assert _wait(runner, running.id) == "cancelled"
            assert _wait(runner, queued.id) == "cancelled"  # its claim fails: it never runs
            db.session.expire_all()
            assert jobs.get_job(uid, running.id).status == "cancelled"
            assert queued.id not in STARTED
            with pytest.raises(Conflict):
                jobs.cancel(uid, running.id)
    finally:
        app.config["JOBS_MAX_PER_USER"] = cap
        jobs.set_runner(app, None)


def test_per_user_cap(app, make_user, embedded):
    uid = _user(app, make_user)
    other = _user(app, make_user)
    with app.app_context():
        cap = app.config["JOBS_MAX_PER_USER"]
        blockers = [jobs.submit(uid, "test_block", {}) for _ in range(cap)]
        with pytest.raises(RateLimited) as exc:
            jobs.submit(uid, "test_ok", {"x": 1})
        assert exc.value.code == "TOO_MANY_JOBS"
        assert exc.value.details == {"active": cap, "limit": cap}
        ok = jobs.submit(other, "test_ok", {"x": 1})  # the cap is per user
        assert _wait(embedded, ok.id) == "succeeded"
        jobs.cancel(uid, blockers[0].id)
        assert _wait(embedded, blockers[0].id) == "cancelled"
        freed = jobs.submit(uid, "test_ok", {"x": 2})  # a slot is free again
        assert _wait(embedded, freed.id) == "succeeded"
        for b in blockers[1:]:
            jobs.cancel(uid, b.id)
            _wait(embedded, b.id)


def test_worker_death_marks_job_failed(app, make_user):
    uid = _user(app, make_user)
    with app.app_context():
        now = datetime.now(UTC)
        stale = timedelta(seconds=app.config["JOBS_STALE_SECONDS"] + 1)
        dead = BacktestJob(
            id=jobs.new_job_id(),
            user_id=uid,
            kind="backtest",
            status="running",
            progress=0.4,
            params={},
            created_at=now - stale,
            started_at=now - stale,
            heartbeat_at=now - stale,
        )
        alive = BacktestJob(
            id=jobs.new_job_id(),
            user_id=uid,
            kind="backtest",
            status="running",
            progress=0.4,
            params={},
            created_at=now,
            started_at=now,
            heartbeat_at=now,
        )
        db.session.add_all([dead, alive])
        db.session.commit()
        job = jobs.get_job(uid, dead.id)  # every read reaps first
        assert job.status == "failed"
        assert job.error["code"] == "WORKER_LOST"
        assert "no heartbeat" in job.error["message"]
        assert job.finished_at is not None
        assert jobs.get_job(uid, alive.id).status == "running"
        # the dead job no longer counts against the cap; the live one does
        assert jobs.active_count(uid) == 1


def test_unknown_kind_fails_cleanly(app, make_user, embedded):
    uid = _user(app, make_user)
    with app.app_context():
        job = jobs.submit(uid, "no_such_kind", {})
        assert _wait(embedded, job.id) == "failed"
        db.session.expire_all()
        assert jobs.get_job(uid, job.id).error["code"] == "UNKNOWN_JOB_KIND"


def test_shutdown_interrupts_a_running_job_and_queues_it_again(app, make_user):
    """SIGTERM (backend/lifecycle.py): the running job hands back and is queued for the next start;
    the queued one stays queued; neither ends as cancelled, failed or (partially) succeeded."""
    uid = _user(app, make_user)
    runner = jobs.EmbeddedRunner(app, 1)
    jobs.set_runner(app, runner)
    app.config["JOBS_MAX_PER_USER"], cap = 5, app.config["JOBS_MAX_PER_USER"]
    try:
        with app.app_context():
            running = jobs.submit(uid, "test_block", {})
            running_id = running.id
            db.session.commit()
            STARTED.setdefault(running_id, threading.Event()).wait(30)
            queued_id = jobs.submit(uid, "test_block", {}).id
            db.session.commit()
            runner.shutdown(timeout=30)
            assert all(f.done() for f in runner.futures.values())
            db.session.expire_all()
            back = jobs.get_job(uid, running_id)
            assert (back.status, back.started_at, back.result) == ("queued", None, None)
            assert jobs.get_job(uid, queued_id).status == "queued"
            runner.enqueue(queued_id)  # a stopping runner takes nothing new
            assert queued_id not in runner.futures or runner.futures[queued_id].cancelled()
    finally:
        app.config["JOBS_MAX_PER_USER"] = cap
        jobs.set_runner(app, None)
