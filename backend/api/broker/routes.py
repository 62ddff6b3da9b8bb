"""Broker namespace: connect Upstox (OAuth), list/revoke connections, reconcile live accounts.

The OAuth callback is public on purpose: Upstox redirects the user's *browser* there, and a
top-level navigation carries no Bearer header. The credential is the ``state`` instead: 256 random
bits, stored hashed server-side, bound to the user who called ``/authorize``, single use and short
lived. If the request does carry our credentials, the state must also belong to that user.
"""

from flask import g
from flask_restx import Namespace, Resource

from backend.api.broker.schemas import (
    AuthorizeSchema,
    CallbackQuerySchema,
    ConnectionListSchema,
    ConnectionSchema,
    MarketDataConnectionSchema,
    ReconcileReportSchema,
    ReconcileRequestSchema,
)
from backend.api.common import conflicts, public, responds, use_schema
from backend.api.security import current_user, require_role, require_scope
from backend.services import broker as broker_service

ns = Namespace("broker", description="Upstox connection (OAuth), connections, reconciliation", validate=False)


@ns.route("/upstox/authorize")
class Authorize(Resource):
    @require_scope("trade")
    @responds(AuthorizeSchema)
    def get(self):
        """Start connecting Upstox: returns the authorization URL (with a single-use state)."""
        return broker_service.authorize(current_user())


@ns.route("/upstox/callback")
@public
class Callback(Resource):
    @use_schema(CallbackQuerySchema, location="query", arg="query")
    @responds(ConnectionSchema)
    def get(self, query):
        """Upstox redirects here with ?code=&state=. The state authenticates the request."""
        conn = broker_service.complete_callback(query["code"], query["state"], g.get("current_user"))
        conn.token_status = broker_service.token_status(conn)
        return conn


@ns.route("/connections")
class Connections(Resource):
    @require_scope("read")
    @responds(ConnectionListSchema)
    def get(self):
        """Your broker connections and whether their tokens are still valid."""
        return {"items": broker_service.list_connections(current_user())}


@ns.route("/connections/<int:connection_id>")
class ConnectionItem(Resource):
    @require_scope("trade")
    @responds(None, 204, "Revoked")
    def delete(self, connection_id):
        """Revoke a connection: its token is deleted; the live account stays for history."""
        broker_service.revoke_connection(current_user(), connection_id)
        return None, 204


@ns.route("/reconcile")
class Reconcile(Resource):
    @require_scope("trade")
    @use_schema(ReconcileRequestSchema)
    @responds(ReconcileReportSchema)
    @conflicts("NOT_A_LIVE_ACCOUNT")
    def post(self, data):
        """Compare your live accounts' orders and positions with Upstox and fix ours (audited)."""
        return broker_service.reconcile(current_user(), data.get("account_id"))


@ns.route("/market-data-connection")
class MarketDataConnection(Resource):
    @require_role("admin")
    @use_schema(MarketDataConnectionSchema)
    @ns.response(204, "No connection is designated any more (connection_id null)")
    @responds(ConnectionSchema, 200, "The designated connection")
    def put(self, data):
        """Admin: designate the connection whose token feeds shared market data (audited)."""
        conn = broker_service.designate_market_data_connection(current_user(), data["connection_id"])
        return conn if conn is not None else ("", 204)
