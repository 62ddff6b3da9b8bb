"""The backtest namespace: backtest, sweep and portfolio jobs, results and the equity/drawdown chart."""

import json
import tempfile

from flask import Response, current_app, request, stream_with_context
from flask_restx import Namespace, Resource

from backend.api.backtest.schemas import (
    BacktestRequestSchema,
    CsvUploadQuerySchema,
    EquityPointsSchema,
    EquityQuerySchema,
    JobListQuerySchema,
    JobSchema,
    JobSummarySchema,
    PortfolioRequestSchema,
    SweepRequestSchema,
    TradeListQuerySchema,
    TradeSchema,
    UploadRequestSchema,
)
from backend.api.common import (
    BinaryFile,
    ErrorEnvelopeSchema,
    conflicts,
    decode_cursor,
    load,
    model_for,
    page_limit,
    raw_response,
    responds,
    use_schema,
)
from backend.api.security import current_user, require_role
from backend.errors import ApiError
from backend.extensions import api
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


@ns.route("/portfolio")
class PortfolioBacktests(Resource):
    @require_role("trader")
    @use_schema(PortfolioRequestSchema)
    @responds(JobSchema, code=202, description="Accepted: poll GET /backtest/{id}")
    def post(self, data):
        """Queue a multi-asset backtest: several symbols, one cash account, target weights or signals.

        Results through the same endpoints as a backtest: summary (metrics, per-symbol figures) on
        GET /backtest/{id}, trades (with their symbol), equity, equity.csv and chart.png.
        """
        return backtests.submit_portfolio(current_user().id, data), 202


@ns.route("/<string:job_id>")
class BacktestItem(Resource):
    @require_role("viewer")
    @responds(JobSchema)
    def get(self, job_id):
        """Status, progress and (when succeeded) the result of a job."""
        return backtests.get(current_user().id, job_id)

    @require_role("trader")
    @responds(JobSchema)
    @conflicts("JOB_FINISHED")
    def delete(self, job_id):
        """Cancel a queued or running job (409 when it already finished)."""
        return backtests.cancel(current_user().id, job_id)


@ns.route("/<string:job_id>/chart.png")
class BacktestChart(Resource):
    @require_role("viewer")
    @raw_response(BinaryFile(), "PNG image (equity above, drawdown below)", "image/png")
    @conflicts("JOB_NOT_READY")
    def get(self, job_id):
        """Equity and drawdown chart of a succeeded backtest, as image/png."""
        png = backtests.chart_png(current_user().id, job_id)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


@ns.route("/upload")
class BacktestUpload(Resource):
    @require_role("trader")
    @ns.doc(
        consumes=["multipart/form-data"],
        params={
            "file": {"in": "formData", "type": "file", "description": "OHLCV CSV (BACKTEST_MAX_CSV_BYTES)"},
            "request": {
                "in": "formData",
                "type": "string",
                "description": "BacktestRequest JSON without csv/data",
                "x-example": json.dumps(UploadRequestSchema.swagger_example),
            },
        },
    )
    @responds(JobSchema, code=202, description="Accepted: poll GET /backtest/{id}")
    def post(self):
        """Queue a backtest on an uploaded CSV file (multipart, streamed to a temporary file, parsed once)."""
        # the global MAX_CONTENT_LENGTH guards JSON bodies; an upload has its own, larger cap
        if request.mimetype != "multipart/form-data":
            raise ApiError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the upload as multipart/form-data (parts: file, request).",
            )
        request.max_content_length = int(current_app.config["BACKTEST_MAX_CSV_BYTES"]) + 64 * 1024
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "Invalid body: check field(s) file.",
                {"fields": {"file": ["required"]}},
            )
        try:
            raw = json.loads(request.form.get("request") or "{}")
        except json.JSONDecodeError as exc:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "Invalid body: check field(s) request.",
                {"fields": {"request": ["not JSON"]}},
            ) from exc
        data = load(UploadRequestSchema(), raw, "body")
        return backtests.submit_backtest(current_user().id, data, upload.stream), 202


def _csv_consumes(spec: dict) -> None:
    """restx derives ``consumes`` only from formData parameters; a raw text/csv body says it here."""
    for item in spec.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict) and "x-consumes" in op:
                op["consumes"] = op.pop("x-consumes")


api.spec_hooks.append(_csv_consumes)

# an upload lands in memory up to this size, in a temporary file beyond (as werkzeug's multipart parts do)
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


@ns.route("/upload/csv")
class BacktestCsvUpload(Resource):
    @require_role("trader")
    @use_schema(CsvUploadQuerySchema, location="query", arg="query")
    @ns.vendor({"x-consumes": ["text/csv"]})  # restx writes no `consumes` itself: see _csv_consumes
    @ns.doc(
        params={
            "csv": {
                "in": "body",
                "description": "the OHLCV CSV itself (BACKTEST_MAX_CSV_BYTES)",
                "schema": {
                    "type": "string",
                    "example": "Date,Open,High,Low,Close,Volume\n"
                    "2004-08-19,100,104.06,95.96,100.34,22351900\n"
                    "2004-08-20,101.01,109.08,100.5,108.31,11428600\n",
                },
            }
        },
    )
    @ns.response(
        413, "Error envelope: the CSV is larger than BACKTEST_MAX_CSV_BYTES", model_for(ErrorEnvelopeSchema)
    )
    @ns.response(415, "Error envelope: the body is not text/csv", model_for(ErrorEnvelopeSchema))
    @responds(JobSchema, code=202, description="Accepted: poll GET /backtest/{id}")
    def post(self, query):
        """Queue a backtest on a CSV sent as the raw ``text/csv`` body (streamed, parsed once)."""
        if request.mimetype != "text/csv":
            raise ApiError(
                415, "UNSUPPORTED_MEDIA_TYPE", "Send the CSV as the body with Content-Type: text/csv."
            )
        try:
            raw = json.loads(query["request"])
        except json.JSONDecodeError as exc:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "Invalid query: check field(s) request.",
                {"fields": {"request": ["not JSON"]}},
            ) from exc
        if not isinstance(raw, dict):
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "Invalid query: check field(s) request.",
                {"fields": {"request": ["must be a JSON object"]}},
            )
        data = load(UploadRequestSchema(), raw, "query")
        # checked while reading too: a chunked body without Content-Length is cut off at the cap (413)
        request.max_content_length = int(current_app.config["BACKTEST_MAX_CSV_BYTES"])
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as body:
            while chunk := request.stream.read(1 << 20):
                body.write(chunk)
            body.seek(0)
            return backtests.submit_backtest(current_user().id, data, body), 202


@ns.route("/<string:job_id>/trades")
class BacktestTrades(Resource):
    @require_role("viewer")
    @use_schema(TradeListQuerySchema, location="query", arg="query")
    @responds(TradeSchema, paged=True)
    @conflicts("JOB_NOT_READY")
    def get(self, job_id, query):
        """Closed trades of a succeeded backtest, in entry order (cursor paging)."""
        return backtests.trades_page(
            current_user().id, job_id, page_limit(query["limit"]), decode_cursor(query["cursor"])
        )


@ns.route("/<string:job_id>/equity")
class BacktestEquity(Resource):
    @require_role("viewer")
    @use_schema(EquityQuerySchema, location="query", arg="query")
    @responds(EquityPointsSchema)
    @conflicts("JOB_NOT_READY")
    def get(self, job_id, query):
        """Equity curve downsampled for charts (per bucket: last, min, max; max drawdown)."""
        return backtests.equity_points(current_user().id, job_id, query["points"])


@ns.route("/<string:job_id>/equity.csv")
class BacktestEquityCsv(Resource):
    @require_role("viewer")
    @raw_response(BinaryFile(), "the full equity curve: bar,time,equity,drawdown", "text/csv")
    @conflicts("JOB_NOT_READY")
    def get(self, job_id):
        """The full equity and drawdown curve as a CSV download."""
        lines = backtests.equity_csv(current_user().id, job_id)
        first = next(lines)  # errors (not found, not ready) surface before streaming starts
        return Response(
            stream_with_context(_chain(first, lines)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="backtest-{job_id}-equity.csv"'},
        )


def _chain(first, rest):
    yield first
    yield from rest
