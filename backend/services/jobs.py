"""Background jobs (backtests, sweeps): one state machine in the ``backtest_jobs`` table, two runners.

* **embedded** (default without Redis): an in-process thread pool. Cancellation is a flag the
  job polls (an in-memory event plus the database column).
* **rq** (``REDIS_URL`` set, or ``JOBS_BACKEND=rq``): jobs go to an RQ queue served by
  ``flask jobs worker`` processes (``make worker``), on this machine or others.

Both run :func:`execute_job`, which claims the row (``queued -> running`` in one UPDATE, so a job
runs once), starts a heartbeat thread, calls the handler registered for the job's kind and stores
the result or the error. A job whose worker dies stops heart-beating; :func:`reap_stale` (run on
every read, submit and periodically) marks it ``failed`` with code ``WORKER_LOST``.
Progress is stored on the row and sent to Socket.IO room ``user:{id}`` as ``job.progress``.

Status: ``queued -> running -> succeeded | failed | cancelled``; ``queued -> cancelled``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import defer

from backend.domain.errors import Conflict, DomainError, NotFound, RateLimited
from backend.extensions import db
from backend.models.strategies import BacktestJob, BacktestJobData
from backend.observability import metrics
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
Handler = Callable[["JobContext"], dict]
_HANDLERS: dict[str, Handler] = {}
# How long a stopping process waits for interrupted jobs to hand back: jobs poll their flags every
# 0.5 s, and gunicorn's default graceful timeout (30 s) bounds the whole stop.
SHUTDOWN_WAIT_SECONDS = 10.0


class JobCancelled(Exception):
    """Raised inside a handler (by :meth:`JobContext.check_cancel`) to stop a cancelled job."""


def handled_kinds() -> frozenset[str]:
    """The job kinds with a handler (a bounded set, for metrics labels)."""
    return frozenset(_HANDLERS)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``func(ctx) -> result dict`` as the handler of jobs of ``kind``."""

    def deco(func: Handler) -> Handler:
        _HANDLERS[kind] = func
        return func

    return deco


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is None:  # SQLite returns naive datetimes (written as UTC)
        return ts.replace(tzinfo=UTC)
    return ts


def new_job_id() -> str:
    """32 hex chars: milliseconds since the epoch then randomness, so ids sort by creation time."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def emit_to_user(user_id: int, event: str, payload: dict) -> None:
    """Socket.IO push to ``user:{id}``; never lets a realtime failure break a job."""
    try:
        from backend.realtime import emit_to_user as _emit

        _emit(user_id, event, payload)
    except Exception:  # noqa: BLE001 - a missing/broken socket layer must not fail the job
        log.debug("job event %s not delivered to user %s", event, user_id, exc_info=True)


def job_event(job: BacktestJob) -> dict:
    return {"id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress}


# --------------------------------------------------------------------------- execution context


@dataclass
class JobContext:
    job_id: str
    user_id: int
    kind: str
    params: dict
    input_csv: str | None
    input_data: bytes | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Set when the process stops (SIGTERM): the job ends early and goes back to the queue.
    interrupt_event: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = field(default=-1.0, repr=False)
    _last_emit: float = field(default=0.0, repr=False)
    _last_check: float = field(default=0.0, repr=False)

    def should_cancel(self) -> bool:
        if self.cancel_event.is_set() or self.interrupt_event.is_set():
            return True
        now = time.monotonic()
        if now - self._last_check < 0.5:  # the DB flag is for other processes; poll it sparingly
            return False
        self._last_check = now
        flag = db.session.execute(
            select(BacktestJob.cancel_requested).where(BacktestJob.id == self.job_id)
        ).scalar()
        db.session.commit()
        if flag:
            self.cancel_event.set()
        return bool(flag)

    def check_cancel(self) -> None:
        if self.should_cancel():
            raise JobCancelled()

    def progress(self, done: int, total: int) -> None:
        """Record ``done/total`` (stored and pushed at most every 1 % or 0.5 s)."""
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        now = time.monotonic()
        if frac - self._last_progress < 0.01 and now - self._last_emit < 0.5 and frac < 1.0:
            return
        self._last_progress, self._last_emit = frac, now
        db.session.execute(
            update(BacktestJob)
            .where(BacktestJob.id == self.job_id, BacktestJob.status == "running")
            .values(progress=frac, heartbeat_at=_now())
        )
        db.session.commit()
        emit_to_user(
            self.user_id,
            "job.progress",
            {"id": self.job_id, "kind": self.kind, "status": "running", "progress": frac},
        )


class _Heartbeat(threading.Thread):
    def __init__(self, app: Flask, job_id: str, every: float) -> None:
        super().__init__(name=f"job-heartbeat-{job_id[:8]}", daemon=True)
        self.app, self.job_id, self.every = app, job_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.app.app_context():
                    db.session.execute(
                        update(BacktestJob)
                        .where(BacktestJob.id == self.job_id, BacktestJob.status == "running")
                        .values(heartbeat_at=_now())
                    )
                    db.session.commit()
            except Exception:  # noqa: BLE001 - a missed beat is retried; the reaper tolerates gaps
                log.warning("job %s heartbeat failed", self.job_id, exc_info=True)


def _finish(job_id: str, status: str, result: dict | None = None, error: dict | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": _now(), "heartbeat_at": _now()}
    if status == "succeeded":
        values["progress"] = 1.0
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error
    db.session.execute(
        update(BacktestJob).where(BacktestJob.id == job_id, BacktestJob.status == "running").values(**values)
    )
    db.session.commit()


def _requeue(job_id: str) -> None:
    """A job interrupted by a shutdown runs again from the start at the next start-up."""
    db.session.execute(
        update(BacktestJob)
        .where(BacktestJob.id == job_id, BacktestJob.status == "running")
        .values(status="queued", progress=0.0, started_at=None, worker=None, heartbeat_at=_now())
    )
    db.session.commit()
    log.info("job %s interrupted by shutdown: queued again", job_id)


def execute_job(
    job_id: str, cancel_event: threading.Event | None = None, interrupt_event: threading.Event | None = None
) -> str:
    """Run one job to completion in the current app context; returns the final status."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    claimed = db.session.execute(
        update(BacktestJob)
        .where(BacktestJob.id == job_id, BacktestJob.status == "queued")
        .values(status="running", started_at=_now(), heartbeat_at=_now(), worker=_worker_name())
    )
    db.session.commit()
    job = db.session.get(BacktestJob, job_id)
    if job is None:
        return "missing"
    if claimed.rowcount != 1:  # cancelled while queued, or another worker took it
        status = job.status
        db.session.commit()
        return status
    packed = db.session.execute(
        select(BacktestJobData.data).where(BacktestJobData.job_id == job.id, BacktestJobData.name == "input")
    ).scalar()
    ctx = JobContext(job.id, job.user_id, job.kind, dict(job.params or {}), job.input_csv, packed)
    db.session.commit()  # end the read: keep transactions short
    if cancel_event is not None:
        ctx.cancel_event = cancel_event
    if interrupt_event is not None:
        ctx.interrupt_event = interrupt_event
    emit_to_user(job.user_id, "job.progress", job_event(job))
    beat = _Heartbeat(app, job_id, float(app.config["JOBS_HEARTBEAT_SECONDS"]))
    beat.start()
    try:
        fn = _HANDLERS.get(job.kind)
        if fn is None:
            raise NotFound(f"no handler for job kind {job.kind!r}", code="UNKNOWN_JOB_KIND")
        result = fn(ctx)
        if ctx.interrupt_event.is_set() and not ctx.cancel_event.is_set():
            _requeue(job_id)  # a partial result of a stopped sweep is not the job's result
        elif ctx.cancel_event.is_set():
            _finish(job_id, "cancelled", result=result)
        else:
            _finish(job_id, "succeeded", result=result)
    except JobCancelled:
        db.session.rollback()
        if ctx.interrupt_event.is_set() and not ctx.cancel_event.is_set():
            _requeue(job_id)
        else:
            _finish(job_id, "cancelled")
    except DomainError as exc:
        db.session.rollback()
        _finish(job_id, "failed", error={"code": exc.code, "message": exc.message, "details": exc.details})
    except Exception as exc:  # noqa: BLE001 - any crash must end as "failed", never "running"
        log.exception("job %s crashed", job_id)
        db.session.rollback()
        _finish(
            job_id,
            "failed",
            error={"code": "JOB_CRASHED", "message": f"{type(exc).__name__}: {exc}"[:500], "details": {}},
        )
    finally:
        beat.stopped.set()
    db.session.expire_all()
    job = db.session.get(BacktestJob, job_id)
    event = job_event(job)
    metrics.record_job(job)
    db.session.commit()
    emit_to_user(ctx.user_id, "job.progress", event)
    return event["status"]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:128]


# --------------------------------------------------------------------------- runners


class EmbeddedRunner:
    """In-process thread pool (numpy releases the GIL in its kernels, so threads scale a little)."""

    name = "embedded"

    def __init__(self, app: Flask, workers: int) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="job")
        self.futures: dict[str, Future] = {}
        self.events: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def enqueue(self, job_id: str) -> None:
        event = threading.Event()
        with self.lock:
            if self.stopping.is_set():
                return  # the job stays queued in the database; the next start-up runs it
            self.events[job_id] = event
            self.futures[job_id] = self.pool.submit(self._run, job_id, event)

    def _run(self, job_id: str, event: threading.Event) -> str:
        try:
            with self.app.app_context():
                return execute_job(job_id, event, self.stopping)
        finally:
            with self.lock:
                self.events.pop(job_id, None)

    def cancel(self, job_id: str) -> None:
        with self.lock:
            event = self.events.get(job_id)
        if event is not None:
            event.set()

    def wait(self, job_id: str, timeout: float | None = None) -> str | None:
        """Block until the job's thread ends (tests and CLI); returns its final status."""
        with self.lock:
            fut = self.futures.get(job_id)
        return None if fut is None else fut.result(timeout)

    def shutdown(self, timeout: float = 0.0) -> None:
        """Stop: queued jobs stay queued, running ones are interrupted and queued again; wait up to
        ``timeout`` seconds for them to hand back (their threads would otherwise hold the exit)."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            pending = [f for f in self.futures.values() if not f.done()]
        if pending and timeout > 0:
            from concurrent.futures import wait

            wait(pending, timeout)


class RQRunner:
    """RQ queue on Redis; ``flask jobs worker`` processes execute :func:`rq_entry`."""

    name = "rq"

    def __init__(self, app: Flask, url: str) -> None:
        import redis
        from rq import Queue

        self.app = app
        self.connection = redis.Redis.from_url(url)
        self.queue = Queue(app.config["JOBS_QUEUE"], connection=self.connection)

    def enqueue(self, job_id: str) -> None:
        self.queue.enqueue(
            rq_entry,
            job_id,
            job_id=f"bt-{job_id}",
            job_timeout=int(self.app.config["JOBS_TIMEOUT_SECONDS"]),
            result_ttl=600,
            failure_ttl=86400,
        )

    def cancel(self, job_id: str) -> None:
        """Queued jobs are already ``cancelled`` (their claim fails); running ones poll the flag."""

    def wait(self, job_id: str, timeout: float | None = None) -> str | None:
        return None

    def shutdown(self) -> None:
        self.connection.close()


def rq_entry(job_id: str) -> str:
    """RQ task: run inside the worker's app (a forked work-horse reconnects to the database)."""
    if has_app_context():
        db.engine.dispose(close=False)  # connections inherited across fork must not be shared
        return execute_job(job_id)
    from backend import create_app

    app = create_app()
    with app.app_context():
        return execute_job(job_id)


def runner(app: Flask | None = None) -> EmbeddedRunner | RQRunner:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    existing = app.extensions.get("jobs_runner")
    if existing is not None:
        return existing
    backend = app.config.get("JOBS_BACKEND", "auto")
    url = app.config.get("REDIS_URL")
    if backend == "rq" or (backend == "auto" and url):
        if not url:
            raise RuntimeError("JOBS_BACKEND=rq needs REDIS_URL")
        made: EmbeddedRunner | RQRunner = RQRunner(app, url)
    else:
        made = EmbeddedRunner(app, int(app.config.get("JOBS_WORKERS", 2)))
    return app.extensions.setdefault("jobs_runner", made)


def set_runner(app: Flask, new: EmbeddedRunner | RQRunner | None) -> None:
    """Replace the runner (tests switch between embedded and RQ); None rebuilds it from config."""
    old = app.extensions.pop("jobs_runner", None)
    if old is not None and old is not new:
        old.shutdown()
    if new is not None:
        app.extensions["jobs_runner"] = new


# --------------------------------------------------------------------------- use cases


def reap_stale(now: datetime | None = None) -> int:
    """Mark running jobs whose heartbeat is older than ``JOBS_STALE_SECONDS`` as failed."""
    now = now or _now()
    stale = float(current_app.config["JOBS_STALE_SECONDS"])
    cutoff = now - timedelta(seconds=stale)
    res = db.session.execute(
        update(BacktestJob)
        .where(
            BacktestJob.status == "running",
            or_(BacktestJob.heartbeat_at.is_(None), BacktestJob.heartbeat_at < cutoff),
        )
        .values(
            status="failed",
            finished_at=now,
            error={
                "code": "WORKER_LOST",
                "message": f"the worker stopped responding (no heartbeat for {stale:g} s)",
                "details": {},
            },
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if res.rowcount:
        log.warning("marked %d stale job(s) as failed", res.rowcount)
    return res.rowcount or 0


def active_count(user_id: int) -> int:
    return int(
        db.session.execute(
            select(func.count())
            .select_from(BacktestJob)
            .where(BacktestJob.user_id == user_id, BacktestJob.status.in_(ACTIVE))
        ).scalar()
        or 0
    )


def submit(
    user_id: int, kind: str, params: dict, input_csv: str | None = None, input_data: bytes | None = None
) -> BacktestJob:
    """Create a queued job and hand it to the runner; over the per-user cap -> RateLimited (429)."""
    reap_stale()
    cap = int(current_app.config["JOBS_MAX_PER_USER"])
    running = active_count(user_id)
    if running >= cap:
        raise RateLimited(
            f"you already have {running} job(s) queued or running (limit {cap}); "
            "wait for one to finish or cancel it",
            details={"active": running, "limit": cap},
            code="TOO_MANY_JOBS",
        )
    job = BacktestJob(
        id=new_job_id(),
        user_id=user_id,
        kind=kind,
        status="queued",
        progress=0.0,
        params=params,
        input_csv=input_csv,
        created_at=_now(),
    )
    db.session.add(job)
    if input_data is not None:
        db.session.flush()
        db.session.add(BacktestJobData(job_id=job.id, name="input", data=input_data))
    event = job_event(job)
    db.session.commit()
    runner().enqueue(event["id"])
    emit_to_user(user_id, "job.progress", event)
    return job


def get_job(user_id: int, job_id: str, kinds: tuple[str, ...] | None = None) -> BacktestJob:
    reap_stale()
    job = db.session.get(BacktestJob, job_id)
    if job is None or job.user_id != user_id or (kinds is not None and job.kind not in kinds):
        raise NotFound(f"job {job_id} not found", code="JOB_NOT_FOUND")
    return job


def list_jobs(user_id: int, limit: int, cursor: dict | None, kinds: tuple[str, ...] | None = None) -> Page:
    reap_stale()
    # the listing shows status only: never load a job's params, input or result
    stmt = (
        select(BacktestJob)
        .options(defer(BacktestJob.params), defer(BacktestJob.result))
        .where(BacktestJob.user_id == user_id)
    )
    if kinds:
        stmt = stmt.where(BacktestJob.kind.in_(kinds))
    return keyset_page(stmt, BacktestJob.id, limit, cursor)


def cancel(user_id: int, job_id: str, kinds: tuple[str, ...] | None = None) -> BacktestJob:
    """Cancel: a queued job ends at once; a running one stops at its next progress check."""
    job = get_job(user_id, job_id, kinds)
    if job.status in TERMINAL:
        raise Conflict(
            f"job {job_id} already {job.status}", details={"status": job.status}, code="JOB_FINISHED"
        )
    db.session.execute(update(BacktestJob).where(BacktestJob.id == job_id).values(cancel_requested=True))
    db.session.execute(
        update(BacktestJob)
        .where(BacktestJob.id == job_id, BacktestJob.status == "queued")
        .values(status="cancelled", finished_at=_now())
    )
    db.session.commit()
    runner().cancel(job_id)
    db.session.refresh(job)
    emit_to_user(user_id, "job.progress", job_event(job))
    return job


def resume_embedded(app: Flask) -> None:
    """At start-up (embedded runner): reap dead running jobs and run the queued ones left behind."""
    with app.app_context():
        try:
            reap_stale()
            run = runner(app)
            if isinstance(run, EmbeddedRunner):
                ids = db.session.execute(
                    select(BacktestJob.id).where(BacktestJob.status == "queued")
                ).scalars()
                for job_id in ids:
                    run.enqueue(job_id)
        except Exception:  # noqa: BLE001 - the tables may not exist yet (before `flask db upgrade`)
            db.session.rollback()
            log.info("job recovery skipped", exc_info=True)


class _Reaper(threading.Thread):
    def __init__(self, app: Flask, every: float) -> None:
        super().__init__(name="job-reaper", daemon=True)
        self.app, self.every = app, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.app.app_context():
                    reap_stale()
            except Exception:  # noqa: BLE001
                log.warning("job reaper failed", exc_info=True)


def init_app(app: Flask) -> None:
    """Start-up: recover jobs and start the periodic reaper (not under TESTING nor in a one-shot command)."""
    if app.config.get("TESTING") or app.config.get("BACKGROUND_WORK") is False:
        return
    resume_embedded(app)
    reaper = _Reaper(app, max(5.0, float(app.config["JOBS_STALE_SECONDS"]) / 2))
    reaper.start()
    app.extensions["jobs_reaper"] = reaper
    from backend.lifecycle import join_threads, on_shutdown

    def stop() -> None:
        reaper.stopped.set()
        run = app.extensions.get("jobs_runner")
        if isinstance(run, EmbeddedRunner):
            run.shutdown(timeout=SHUTDOWN_WAIT_SECONDS)
        elif run is not None:
            run.shutdown()
        join_threads([reaper], 5.0)

    on_shutdown(app, "job pool", stop)


# --------------------------------------------------------------------------- CLI


@click.group("jobs")
def jobs_cli() -> None:
    """Background job workers."""


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--simple", is_flag=True, help="Run jobs in the worker process (no fork).")
@with_appcontext
def worker_cmd(burst: bool, simple: bool) -> None:
    """Serve the RQ job queue (needs REDIS_URL)."""
    from rq import SimpleWorker, Worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set: the embedded runner needs no worker")
    run = RQRunner(app, url)
    cls = SimpleWorker if simple else Worker
    worker = cls([run.queue], connection=run.connection)
    worker.work(burst=burst, with_scheduler=False)


@jobs_cli.command("reap")
@with_appcontext
def reap_cmd() -> None:
    """Mark jobs whose worker died as failed."""
    click.echo(f"reaped {reap_stale()} job(s)")


def register_cli(app: Flask) -> None:
    """``flask jobs ...`` and ``flask analytics ...``."""
    from backend.services.analytics import analytics_cli

    app.cli.add_command(jobs_cli)
    app.cli.add_command(analytics_cli)
