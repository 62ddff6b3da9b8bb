"""RQ runner against a real Redis (only in the Redis run: TEST_REDIS_URL set)."""

from __future__ import annotations

import os

import pytest

from backend.extensions import db
from backend.services import jobs

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")


@jobs.handler("test_rq_ok")
def _ok(ctx: jobs.JobContext) -> dict:
    ctx.progress(1, 2)
    return {"sum": sum(ctx.params["values"])}


@jobs.handler("test_rq_die")
def _die(ctx: jobs.JobContext) -> dict:
    os._exit(9)  # the work-horse process dies mid-job, as on OOM-kill or a crash


@pytest.fixture
def rq_runner(app):
    runner = jobs.RQRunner(app, os.environ["TEST_REDIS_URL"])
    jobs.set_runner(app, runner)
    yield runner
    jobs.set_runner(app, None)


def _work(runner, fork: bool) -> None:
    from rq import SimpleWorker, Worker

    cls = Worker if fork else SimpleWorker
    cls([runner.queue], connection=runner.connection).work(burst=True, with_scheduler=False)


def test_rq_job_runs_on_a_worker(app, make_user, rq_runner):
    uid, _ = make_user("trader")
    with app.app_context():
        job = jobs.submit(uid, "test_rq_ok", {"values": [1, 2, 3]})
        assert rq_runner.queue.count == 1
        _work(rq_runner, fork=False)
        db.session.expire_all()
        done = jobs.get_job(uid, job.id)
        assert (done.status, done.result) == ("succeeded", {"sum": 6})


def test_rq_cancel_while_queued_never_runs(app, make_user, rq_runner):
    uid, _ = make_user("trader")
    with app.app_context():
        job = jobs.submit(uid, "test_rq_ok", {"values": [1]})
        jobs.cancel(uid, job.id)
        _work(rq_runner, fork=False)
        db.session.expire_all()
        done = jobs.get_job(uid, job.id)
        assert (done.status, done.result) == ("cancelled", None)


def test_rq_worker_death_is_reaped(app, make_user, rq_runner):
    from datetime import UTC, datetime, timedelta

    uid, _ = make_user("trader")
    with app.app_context():
        job = jobs.submit(uid, "test_rq_die", {})
        _work(rq_runner, fork=True)  # the forked horse exits; the worker survives
        db.session.expire_all()
        assert db.session.get(type(job), job.id).status == "running"  # left behind by the dead horse
        later = datetime.now(UTC) + timedelta(seconds=app.config["JOBS_STALE_SECONDS"] + 1)
        assert jobs.reap_stale(later) == 1
        db.session.expire_all()
        done = db.session.get(type(job), job.id)
        assert done.status == "failed" and done.error["code"] == "WORKER_LOST"
