"""The strategies namespace: catalog, options analysis/placement, saved strategies and deployments."""

from flask_restx import Namespace, Resource

from backend.api.common import (
    ListQuerySchema,
    conflicts,
    decode_cursor,
    no_body,
    page_limit,
    responds,
    use_schema,
)
from backend.api.security import current_user, require_role, require_scope
from backend.api.strategies.schemas import (
    AnalysisSchema,
    AnalyzeRequestSchema,
    CatalogQuerySchema,
    CatalogSchema,
    DeploymentLogSchema,
    DeploymentSchema,
    DeployRequestSchema,
    PlaceRequestSchema,
    PlaceResultSchema,
    SavedListQuerySchema,
    SavedStrategyInputSchema,
    SavedStrategySchema,
    SavedStrategyUpdateSchema,
    VersionListSchema,
)
from backend.services import deployments, strategies

ns = Namespace(
    "strategies", description="Strategy catalog, options structures, saved strategies", validate=False
)


@ns.route("/catalog")
class Catalog(Resource):
    @require_role("viewer")
    @use_schema(CatalogQuerySchema, location="query", arg="query")
    @responds(CatalogSchema)
    def get(self, query):
        """Every registered strategy with its kind, description and params JSON schema."""
        return {"items": strategies.catalog(query["kind"])}


@ns.route("/options/<string:name>/analyze")
class OptionsAnalyze(Resource):
    @require_scope("read")  # a computation: changes nothing, so a read key may call it
    @use_schema(AnalyzeRequestSchema)
    @responds(AnalysisSchema)
    def post(self, name, data):
        """Legs from the option chain, payoff (expiry and today), max P/L, breakevens, greeks, margin."""
        out, _, _ = strategies.analyze(name, data["params"], data["as_of"], data["rate"])
        return out


@ns.route("/options/<string:name>/place")
class OptionsPlace(Resource):
    @require_role("trader")
    @use_schema(PlaceRequestSchema)
    @responds(PlaceResultSchema, code=201)
    def post(self, name, data):
        """Place the legs as one basket of MARKET orders: on paper every leg is accepted or none; live,
        each leg is sent exactly once (docs/brokers.md)."""
        return strategies.place(
            current_user(), name, data["params"], data["account_id"], data["product"]
        ), 201


@ns.route("")
class SavedList(Resource):
    @require_role("viewer")
    @use_schema(SavedListQuerySchema, location="query", arg="query")
    @responds(SavedStrategySchema, paged=True)
    def get(self, query):
        """Your saved strategies (soft-deleted ones with include_deleted=true)."""
        return strategies.list_saved(
            current_user(),
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
            query["include_deleted"],
        )

    @require_role("trader")
    @use_schema(SavedStrategyInputSchema)
    @responds(SavedStrategySchema, code=201)
    def post(self, data):
        """Save a strategy configuration (version 1)."""
        return strategies.create_saved(current_user(), data), 201


@ns.route("/<int:strategy_id>")
class SavedItem(Resource):
    @require_role("viewer")
    @responds(SavedStrategySchema)
    def get(self, strategy_id):
        """One saved strategy."""
        return strategies.get_saved(current_user(), strategy_id)

    @require_role("trader")
    @use_schema(SavedStrategyUpdateSchema)
    @responds(SavedStrategySchema)
    def patch(self, strategy_id, data):
        """Change it: the version goes up by one when anything changed."""
        return strategies.update_saved(current_user(), strategy_id, data)

    @require_role("trader")
    @responds(None, code=204)
    def delete(self, strategy_id):
        """Soft delete (stops a running deployment; the versions stay)."""
        strategies.delete_saved(current_user(), strategy_id)
        return None, 204


@ns.route("/<int:strategy_id>/versions")
class SavedVersions(Resource):
    @require_role("viewer")
    @responds(VersionListSchema)
    def get(self, strategy_id):
        """Every saved state, oldest first."""
        return {"items": strategies.versions(current_user(), strategy_id)}


@ns.route("/<int:strategy_id>/deploy")
class Deploy(Resource):
    @require_role("trader")
    @use_schema(DeployRequestSchema)
    @responds(DeploymentSchema, code=201)
    @conflicts("ALREADY_RUNNING")
    def post(self, strategy_id, data):
        """Run the strategy live on a paper account from feed bars."""
        return deployments.deploy(current_user(), strategy_id, data["account_id"]), 201


@ns.route("/<int:strategy_id>/stop")
class Stop(Resource):
    @require_role("trader")
    @no_body
    @responds(DeploymentSchema)
    @conflicts("NOT_RUNNING")
    def post(self, strategy_id):
        """Stop the running deployment (open positions are kept)."""
        return deployments.stop(current_user(), strategy_id)


@ns.route("/<int:strategy_id>/status")
class Status(Resource):
    @require_role("viewer")
    @responds(DeploymentSchema)
    def get(self, strategy_id):
        """The latest deployment: state, positions, last processed bar."""
        return deployments.status(current_user(), strategy_id)


@ns.route("/<int:strategy_id>/logs")
class Logs(Resource):
    @require_role("viewer")
    @use_schema(ListQuerySchema, location="query", arg="query")
    @responds(DeploymentLogSchema, paged=True)
    def get(self, strategy_id, query):
        """Deployment log (orders, rejections, start/stop), newest first."""
        return deployments.logs(
            current_user(), strategy_id, page_limit(query["limit"]), decode_cursor(query["cursor"])
        )
