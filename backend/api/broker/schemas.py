"""Broker API schemas: Upstox OAuth, connections, reconciliation."""

from marshmallow import EXCLUDE, Schema, fields, validate


class AuthorizeSchema(Schema):
    authorization_url = fields.String(required=True, metadata={"description": "Open this in the browser"})
    state = fields.String(required=True, metadata={"description": "Single-use, bound to you, expires"})
    expires_at = fields.DateTime(required=True)


class CallbackQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    state = fields.String(required=True, validate=validate.Length(min=1, max=256))


class ConnectionSchema(Schema):
    id = fields.Integer(required=True)
    broker = fields.String(required=True)
    account_id = fields.Integer(allow_none=True, metadata={"description": "The live trading account"})
    broker_user_id = fields.String(required=True)
    broker_user_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active | revoked"})
    token_status = fields.String(
        required=True, metadata={"description": "valid | expired | revoked | unreadable (reconnect)"}
    )
    token_expires_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)
    last_reconciled_at = fields.DateTime(allow_none=True)
    market_data_feed = fields.Boolean(
        metadata={"description": "This connection's token feeds the shared market data (admin's choice)"}
    )


class ConnectionListSchema(Schema):
    items = fields.List(fields.Nested(ConnectionSchema), required=True)


class ReconcileRequestSchema(Schema):
    swagger_example = {"account_id": None}

    class Meta:
        unknown = EXCLUDE

    account_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))


class DifferenceSchema(Schema):
    account_id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "order | position | trade"})
    key = fields.String(required=True, metadata={"description": "broker order id or symbol"})
    field = fields.String(required=True)
    ours = fields.String(allow_none=True)
    broker = fields.String(allow_none=True)
    action = fields.String(required=True, metadata={"description": "updated | created | closed"})


class ReconcileErrorSchema(Schema):
    account_id = fields.Integer(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)


class ReconcileReportSchema(Schema):
    accounts = fields.List(fields.Integer(), required=True)
    differences = fields.List(fields.Nested(DifferenceSchema), required=True)
    errors = fields.List(fields.Nested(ReconcileErrorSchema), required=True)


class MarketDataConnectionSchema(Schema):
    swagger_example = {"connection_id": None}
    connection_id = fields.Integer(
        required=True,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": "The active connection whose token feeds shared market data; null: none"},
    )
