"""The analytics namespace: what-if simulation, performance, risk, P&L and trade statistics."""

from flask_restx import Namespace, Resource

from backend.api.analytics.schemas import (
    AccountRangeQuerySchema,
    PerformanceSchema,
    PnlQuerySchema,
    PnlSchema,
    RiskQuerySchema,
    RiskSchema,
    SimulateRequestSchema,
    SimulateResultSchema,
    SnapshotRequestSchema,
    SnapshotSchema,
    TradeStatsSchema,
)
from backend.api.common import responds, use_schema
from backend.api.security import current_user, require_role, require_scope
from backend.services import analytics

ns = Namespace(
    "analytics", description="Portfolio analytics (same metric functions as the backtester)", validate=False
)


@ns.route("/simulate")
class Simulate(Resource):
    @require_scope("read")  # a computation: changes nothing, so a read key may call it
    @use_schema(SimulateRequestSchema)
    @responds(SimulateResultSchema)
    def post(self, data):
        """What if I had invested this amount in these symbols with these weights on this date."""
        return analytics.simulate(data)


@ns.route("/performance")
class Performance(Resource):
    @require_role("viewer")
    @use_schema(AccountRangeQuerySchema, location="query", arg="query")
    @responds(PerformanceSchema)
    def get(self, query):
        """Equity curve from daily snapshots, fills, and the backtester's metrics."""
        return analytics.performance(current_user(), query["account_id"], query["from_"], query["to"])


@ns.route("/risk")
class Risk(Resource):
    @require_role("viewer")
    @use_schema(RiskQuerySchema, location="query", arg="query")
    @responds(RiskSchema)
    def get(self, query):
        """VaR (historical and parametric), exposure by symbol and sector, concentration, beta to NIFTY 50."""
        return analytics.risk(current_user(), query["account_id"], query["lookback_days"], query["level"])


@ns.route("/pnl")
class Pnl(Resource):
    @require_role("viewer")
    @use_schema(PnlQuerySchema, location="query", arg="query")
    @responds(PnlSchema)
    def get(self, query):
        """Realised P&L net of charges grouped by day, symbol or strategy."""
        return analytics.pnl(
            current_user(), query["account_id"], query["group_by"], query["from_"], query["to"]
        )


@ns.route("/trades")
class Trades(Resource):
    @require_role("viewer")
    @use_schema(AccountRangeQuerySchema, location="query", arg="query")
    @responds(TradeStatsSchema)
    def get(self, query):
        """Trade statistics over closing fills."""
        return analytics.trade_stats(current_user(), query["account_id"], query["from_"], query["to"])


@ns.route("/snapshots")
class Snapshots(Resource):
    @require_role("trader")
    @use_schema(SnapshotRequestSchema)
    @responds(SnapshotSchema, code=201)
    def post(self, data):
        """Take the account's equity snapshot now (also taken automatically at session close)."""
        return analytics.take_snapshot(current_user(), data["account_id"]), 201
