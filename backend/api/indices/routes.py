"""Indices: portfolio construction over a universe of instruments (docs/portfolios.md).

Reading needs the ``read`` scope; creating, computing and deleting store state and need ``trade``.
A simulation computes and stores nothing, so a read key may call it.
"""

from flask_restx import Namespace, Resource

from backend.api.common import ListQuerySchema, conflicts, decode_cursor, page_limit, responds, use_schema
from backend.api.indices.schemas import (
    AllocationQuerySchema,
    AllocationSchema,
    IndexComputeResultSchema,
    IndexComputeSchema,
    IndexCreateSchema,
    IndexSchema,
    IndexValueSchema,
    IndexValuesQuerySchema,
    SimulationRequestSchema,
    SimulationResultSchema,
)
from backend.api.security import current_user, require_scope
from backend.services import indices

ns = Namespace(
    "indices", description="Portfolio indices: weighting, rebalancing, values, simulations", validate=False
)


@ns.route("")
class Indices(Resource):
    @require_scope("read")
    @use_schema(ListQuerySchema, location="query", arg="query")
    @responds(IndexSchema, paged=True)
    def get(self, query):
        """Your indices, newest first."""
        return indices.list_for(current_user(), page_limit(query["limit"]), decode_cursor(query["cursor"]))

    @use_schema(IndexCreateSchema)
    @conflicts("INDEX_NAME_TAKEN")
    @responds(IndexSchema, 201, "Created")
    def post(self, data):
        """Define an index: universe, weighting method, rebalance rule, base value and currency."""
        return indices.create(current_user(), data), 201


@ns.route("/<int:index_id>")
class IndexItem(Resource):
    @require_scope("read")
    @responds(IndexSchema)
    def get(self, index_id):
        """One index."""
        return indices.get(current_user(), index_id)

    @responds(None, 204, "Deleted")
    def delete(self, index_id):
        """Delete an index with its values and allocations."""
        indices.delete(current_user(), index_id)
        return None, 204


@ns.route("/<int:index_id>/compute")
class IndexCompute(Resource):
    @use_schema(IndexComputeSchema)
    @conflicts("INDEX_BUSY", "INDEX_HISTORY_MISMATCH")
    @responds(IndexComputeResultSchema)
    def post(self, index_id, data):
        """Append the values (and rebalance allocations) of the days after the last computed one."""
        return indices.compute(current_user(), index_id, data["end_date"])


@ns.route("/<int:index_id>/values")
class IndexValues(Resource):
    @require_scope("read")
    @use_schema(IndexValuesQuerySchema, location="query", arg="query")
    @responds(IndexValueSchema, paged=True)
    def get(self, index_id, query):
        """The index's value per day, oldest first (paged; ``from``/``to`` dates inclusive)."""
        return indices.values(
            current_user(),
            index_id,
            query["from_"],
            query["to"],
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
        )


@ns.route("/<int:index_id>/allocation")
class IndexAllocation(Resource):
    @require_scope("read")
    @use_schema(AllocationQuerySchema, location="query", arg="query")
    @responds(AllocationSchema)
    def get(self, index_id, query):
        """The current allocation (the latest rebalance's), or the one in force on ``on``."""
        return indices.allocation(current_user(), index_id, query["on"])


@ns.route("/<int:index_id>/simulate")
class IndexSimulate(Resource):
    @require_scope("read")  # a computation: changes nothing, so a read key may call it
    @use_schema(SimulationRequestSchema)
    @responds(SimulationResultSchema)
    def post(self, index_id, data):
        """An amount invested on a start date in a chosen currency, following this index's method
        (whole shares plus cash, charges on every trade, values converted at each day's FX rate)."""
        return indices.simulate(current_user(), index_id, data)
