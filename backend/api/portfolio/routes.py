"""Portfolio: summary, positions, holdings, trades, accounts, reset, close, stops, risk, sizing."""

from flask_restx import Namespace, Resource

from backend.api.common import conflicts, decode_cursor, no_body, page_limit, responds, use_schema
from backend.api.orders.schemas import OrderSchema, TradeSchema
from backend.api.portfolio.schemas import (
    AccountCreateSchema,
    AccountQuerySchema,
    AccountSchema,
    AccountUpdateSchema,
    CloseResultSchema,
    KillSwitchSchema,
    PositionQuerySchema,
    PositionSchema,
    ResetSchema,
    RiskSchema,
    RiskUpdateSchema,
    StopsSchema,
    SuggestionSchema,
    SuggestQuerySchema,
    SummarySchema,
    TradeListQuerySchema,
)
from backend.api.security import current_user, require_scope
from backend.services.trading import accounts, portfolio, risk

ns = Namespace("portfolio", description="Cash, positions, holdings, accounts and risk", validate=False)


@ns.route("")
class Summary(Resource):
    @require_scope("read")
    @use_schema(AccountQuerySchema, location="query", arg="query")
    @responds(SummarySchema)
    def get(self, query):
        """Cash, equity, margin used, day P&L, realised and unrealised P&L."""
        return portfolio.summary(current_user(), query["account_id"])


@ns.route("/positions")
class Positions(Resource):
    @require_scope("read")
    @use_schema(AccountQuerySchema, location="query", arg="query")
    @responds(PositionSchema, many=True)
    def get(self, query):
        """Open positions priced with one batched quote call."""
        return portfolio.positions(current_user(), query["account_id"])


@ns.route("/positions/close-all")
class CloseAll(Resource):
    @require_scope("trade")
    @use_schema(AccountQuerySchema, location="query", arg="query")
    @no_body
    @responds(CloseResultSchema)
    @conflicts("ORDER_NOT_ACKNOWLEDGED")
    def post(self, query):
        """Flatten every open position with MARKET orders."""
        return {"orders": portfolio.close_all(current_user(), query["account_id"])}


@ns.route("/positions/<string:symbol>/close")
class ClosePosition(Resource):
    @require_scope("trade")
    @use_schema(PositionQuerySchema, location="query", arg="query")
    @no_body
    @responds(OrderSchema, 201, "Created")
    @conflicts("ORDER_NOT_ACKNOWLEDGED")
    def post(self, symbol, query):
        """Flatten one position with a MARKET order tagged ``close`` in the position's product (selling
        holdings uses D); its working stop and take-profit orders are cancelled when it is accepted."""
        return portfolio.close_position(current_user(), query["account_id"], symbol, query["product"]), 201


@ns.route("/positions/<string:symbol>/stops")
class PositionStops(Resource):
    @require_scope("trade")
    @use_schema(PositionQuerySchema, location="query", arg="query")
    @use_schema(StopsSchema)
    @responds(PositionSchema)
    @conflicts("ORDER_NOT_ACKNOWLEDGED")
    def put(self, symbol, query, data):
        """Set stop-loss / take-profit / trailing exits (all null removes them)."""
        return portfolio.set_stops(current_user(), query["account_id"], symbol, data, query["product"])


@ns.route("/holdings")
class Holdings(Resource):
    @require_scope("read")
    @use_schema(AccountQuerySchema, location="query", arg="query")
    @responds(PositionSchema, many=True)
    def get(self, query):
        """Delivery (D) long positions."""
        return portfolio.holdings(current_user(), query["account_id"])


@ns.route("/trades")
class Trades(Resource):
    @require_scope("read")
    @use_schema(TradeListQuerySchema, location="query", arg="query")
    @responds(TradeSchema, paged=True)
    def get(self, query):
        """Fills of an account, newest first."""
        return portfolio.trades(
            current_user(),
            query["account_id"],
            query["symbol"],
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
        )


@ns.route("/suggest-quantity")
class SuggestQuantity(Resource):
    @require_scope("read")
    @use_schema(SuggestQuerySchema, location="query", arg="query")
    @responds(SuggestionSchema)
    def get(self, query):
        """Position sizing: % of equity cap and risk-per-trade from the stop distance."""
        return portfolio.suggest_quantity(
            current_user(), query["account_id"], query["symbol"], query["price"], query["stop_price"]
        )


@ns.route("/accounts")
class Accounts(Resource):
    @require_scope("read")
    @responds(AccountSchema, many=True)
    def get(self):
        """The caller's accounts (a default paper account is created on first use)."""
        return accounts.list_accounts(current_user())

    @require_scope("trade")
    @use_schema(AccountCreateSchema)
    @responds(AccountSchema, 201, "Created")
    def post(self, data):
        """Create a paper account with its own starting cash."""
        return accounts.create_account(
            current_user(), data["name"], data["starting_cash"], data["is_default"]
        ), 201


@ns.route("/accounts/<int:account_id>")
class AccountItem(Resource):
    @require_scope("read")
    @responds(AccountSchema)
    def get(self, account_id):
        """One account."""
        return accounts.get_account(current_user(), account_id)

    @require_scope("trade")
    @use_schema(AccountUpdateSchema)
    @responds(AccountSchema)
    def patch(self, account_id, data):
        """Rename, or make this the default account."""
        return accounts.update_account(current_user(), account_id, data.get("name"), data.get("is_default"))


@ns.route("/accounts/<int:account_id>/reset")
class AccountReset(Resource):
    @require_scope("trade")
    @use_schema(ResetSchema)
    @responds(AccountSchema)
    @conflicts("NOT_A_PAPER_ACCOUNT")
    def post(self, account_id, data):
        """Wipe orders, trades and positions and restart with fresh cash (confirm: "RESET"). Audited."""
        return accounts.reset_account(current_user(), account_id, data["confirm"], data["starting_cash"])


@ns.route("/accounts/<int:account_id>/risk")
class AccountRisk(Resource):
    @require_scope("read")
    @responds(RiskSchema)
    def get(self, account_id):
        """Effective limits, overrides and circuit-breaker state."""
        return risk.get_risk(current_user(), account_id)

    @require_scope("trade")
    @use_schema(RiskUpdateSchema)
    @responds(RiskSchema)
    def patch(self, account_id, data):
        """Tighten limits (only admins may loosen past the defaults). Audited."""
        return risk.update_risk(current_user(), account_id, data["overrides"])


@ns.route("/accounts/<int:account_id>/kill-switch")
class AccountKillSwitch(Resource):
    @require_scope("trade")
    @use_schema(KillSwitchSchema)
    @responds(RiskSchema)
    def post(self, account_id, data):
        """Engage or release this account's kill switch. Audited."""
        return risk.set_kill_switch(current_user(), account_id, data["on"], data["reason"])
