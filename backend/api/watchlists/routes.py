"""Watchlists: a user's named, ordered symbol lists (the dashboard's quote board).

Reading needs the ``read`` scope. Changing a list is a state change and needs ``trade``, like every
other write (a read-only API key never changes anything; viewers see the dashboard read-only).
"""

from flask_restx import Namespace, Resource

from backend.api.common import conflicts, responds, use_schema
from backend.api.security import current_user, require_scope
from backend.api.watchlists.schemas import (
    SymbolAddSchema,
    SymbolsSetSchema,
    WatchlistCreateSchema,
    WatchlistOrderSchema,
    WatchlistRenameSchema,
    WatchlistSchema,
)
from backend.services import watchlists

ns = Namespace("watchlists", description="Your watchlists (ordered symbol lists)", validate=False)


@ns.route("")
class Watchlists(Resource):
    @require_scope("read")
    @responds(WatchlistSchema, many=True)
    def get(self):
        """Your watchlists, in display order, with their symbols."""
        return watchlists.list_for(current_user())

    @use_schema(WatchlistCreateSchema)
    @responds(WatchlistSchema, 201, "Created")
    @conflicts("WATCHLIST_NAME_TAKEN")
    def post(self, data):
        """Create a watchlist (optionally with symbols); it goes last."""
        return watchlists.create(current_user(), data["name"], data["symbols"]), 201


@ns.route("/order")
class WatchlistOrder(Resource):
    @use_schema(WatchlistOrderSchema)
    @responds(WatchlistSchema, many=True)
    def put(self, data):
        """Reorder your watchlists: give every id once, in the new order."""
        return watchlists.reorder_lists(current_user(), data["ids"])


@ns.route("/<int:watchlist_id>")
class WatchlistItem(Resource):
    @require_scope("read")
    @responds(WatchlistSchema)
    def get(self, watchlist_id):
        """One watchlist."""
        return watchlists.get(current_user(), watchlist_id)

    @use_schema(WatchlistRenameSchema)
    @responds(WatchlistSchema)
    @conflicts("WATCHLIST_NAME_TAKEN")
    def patch(self, watchlist_id, data):
        """Rename a watchlist."""
        return watchlists.rename(current_user(), watchlist_id, data["name"])

    @responds(None, 204, "Deleted")
    def delete(self, watchlist_id):
        """Delete a watchlist and its symbols."""
        watchlists.delete(current_user(), watchlist_id)
        return None, 204


@ns.route("/<int:watchlist_id>/symbols")
class WatchlistSymbols(Resource):
    @use_schema(SymbolAddSchema)
    @responds(WatchlistSchema, 201, "Added")
    @conflicts("WATCHLIST_SYMBOL_EXISTS")
    def post(self, watchlist_id, data):
        """Add a symbol (an active instrument; search with GET /market-data/instruments?q=)."""
        return watchlists.add_symbol(current_user(), watchlist_id, data["symbol"], data["position"]), 201

    @use_schema(SymbolsSetSchema)
    @responds(WatchlistSchema)
    def put(self, watchlist_id, data):
        """Replace the symbols in one call: reorder, or add and remove several."""
        return watchlists.set_symbols(current_user(), watchlist_id, data["symbols"])


@ns.route("/<int:watchlist_id>/symbols/<string:symbol>")
class WatchlistSymbol(Resource):
    @responds(WatchlistSchema)
    def delete(self, watchlist_id, symbol):
        """Remove a symbol."""
        return watchlists.remove_symbol(current_user(), watchlist_id, symbol)
