"""The backtest namespace: backtest and sweep jobs, results and the equity/drawdown chart."""

from flask import Response
from flask_restx import Namespace, Resource

from backend.api.backtest.schemas import (
    BacktestRequestSchema,
    JobListQuerySchema,
    JobSchema,
    JobSummarySchema,
    SweepRequestSchema,
)
from backend.api.common import BinaryFile, decode_cursor, page_limit, raw_response, responds, use_schema
from backend.api.security import current_user, require_role
from backend.services import backtests, jobs

ns = Namespace("backtest", description="Backtests and parameter sweeps as background jobs", validate=False)


@ns.route("")
class Backtests(Resource):
    @require_role("trader")
    @use_schema(JobListQuerySchema, location="query", arg="query")
    @responds(JobSummarySchema, paged=True)
    def get(self, query):
        """Your backtest and sweep jobs, newest first."""
        kinds = (query["kind"],) if query["kind"] else backtests.KINDS
        return jobs.list_jobs(
            current_user().id, page_limit(query["limit"]), decode_cursor(query["cursor"]), kinds
        )

    @require_role("trader")
    @use_schema(BacktestRequestSchema)
    @responds(JobSchema, code=202, description="Accepted: poll GET /backtest/{id}")
    def post(self, data):
        """Queue a backtest (data from the candle store or a CSV). Progress also on Socket.IO user:{id}."""
        return backtests.submit_backtest(current_user().id, data), 202


@ns.route("/sweeps")
class Sweeps(Resource):
    @require_role("trader")
    @use_schema(SweepRequestSchema)
    @responds(JobSchema, code=202, description="Accepted: poll GET /backtest/{id}")
    def post(self, data):
        """Queue a parameter sweep: metrics per combination and heat-map data (two swept params)."""
        return backtests.submit_sweep(current_user().id, data), 202


@ns.route("/<string:job_id>")
class BacktestItem(Resource):
    @require_role("viewer")
    @responds(JobSchema)
    def get(self, job_id):
        """Status, progress and (when succeeded) the result of a job."""
        return backtests.get(current_user().id, job_id)

    @require_role("trader")
    @responds(JobSchema)
    def delete(self, job_id):
        """Cancel a queued or running job (409 when it already finished)."""
        return backtests.cancel(current_user().id, job_id)


@ns.route("/<string:job_id>/chart.png")
class BacktestChart(Resource):
    @require_role("viewer")
    @raw_response(BinaryFile(), "PNG image (equity above, drawdown below)", "image/png")
    def get(self, job_id):
        """Equity and drawdown chart of a succeeded backtest, as image/png."""
        png = backtests.chart_png(current_user().id, job_id)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})
