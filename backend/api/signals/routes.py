"""The signals namespace: TradingView / Chartink webhook, alert-to-order mappings, signal list."""

from __future__ import annotations

import hashlib
import json

from flask import current_app, request
from flask_restx import Namespace, Resource
from marshmallow import ValidationError

from backend.api.common import (
    ListQuerySchema,
    conflicts,
    decode_cursor,
    model_for,
    no_body,
    page_limit,
    public,
    responds,
    use_schema,
)
from backend.api.security import current_user, require_scope
from backend.api.signals.schemas import (
    ChartinkAlertSchema,
    HmacSettingSchema,
    SignalListQuerySchema,
    SignalMappingCreateSchema,
    SignalMappingSchema,
    SignalMappingUpdateSchema,
    SignalSchema,
    SignalWebhookSchema,
    TradingViewAlertSchema,
)
from backend.extensions import limiter
from backend.services import signals

ns = Namespace(
    "signals", description="Orders from TradingView / Chartink alerts via saved mappings", validate=False
)
_TRADINGVIEW = TradingViewAlertSchema()
_CHARTINK = ChartinkAlertSchema()


def _webhook_limit() -> str:
    return current_app.config["RATELIMIT_SIGNALS_WEBHOOK"]


def _token_key() -> str:
    # keyed by the token's hash: every caller of one URL shares one budget, whatever its address
    token = (request.view_args or {}).get("token", "")
    return "signals-token:" + hashlib.sha256(token.encode()).hexdigest()


@ns.route("")
class Signals(Resource):
    @require_scope("read")
    @use_schema(SignalListQuerySchema, location="query", arg="query")
    @responds(SignalSchema, paged=True)
    def get(self, query):
        """Received signals (newest first), optionally by status."""
        return signals.list_signals(
            current_user(), query["status"], page_limit(query["limit"]), decode_cursor(query["cursor"])
        )


@ns.route("/webhook/<string:token>")
@public
class SignalWebhookReceive(Resource):
    decorators = [limiter.limit(_webhook_limit, key_func=_token_key)]

    @ns.expect(model_for(TradingViewAlertSchema))  # documents TradingView's; Chartink's is fixed by Chartink
    @responds(SignalSchema, 201, "Signal processed (200: a repeat of an alert id, with the original result)")
    def post(self, token):
        """Receive a TradingView or Chartink alert; authenticated by the URL token (and X-Signature)."""
        raw = request.get_data(cache=True)
        user = signals.authenticate_webhook(token, raw, request.headers.get("X-Signature"))
        try:
            payload = json.loads(raw)  # TradingView sends text/plain unless the message is valid JSON
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            text = raw[:2000].decode(errors="replace")
            signals.invalid_body(
                user, "unknown", {"raw": text}, {"_schema": ["The body must be a JSON object."]}
            )
        is_chartink = "stocks" in payload and "mapping" not in payload
        try:
            alert = (_CHARTINK if is_chartink else _TRADINGVIEW).load(payload)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            signals.invalid_body(user, "chartink" if is_chartink else "tradingview", payload, messages)
        signal, created = signals.receive(user, alert, payload)
        return signal, 201 if created else 200


@ns.route("/token")
class SignalToken(Resource):
    @require_scope("read")
    @responds(SignalWebhookSchema)
    def get(self):
        """Whether a webhook token (and HMAC secret) exists; neither is ever shown again."""
        return signals.webhook_info(current_user())


@ns.route("/token/rotate")
class SignalTokenRotate(Resource):
    @require_scope("trade")
    @no_body
    @responds(SignalWebhookSchema)
    def post(self):
        """Create or replace the webhook token (the old URL stops working); shown only in this response."""
        return signals.rotate_token(current_user())


@ns.route("/hmac")
class SignalHmac(Resource):
    @require_scope("trade")
    @use_schema(HmacSettingSchema)
    @responds(SignalWebhookSchema)
    @conflicts("SIGNAL_NO_TOKEN")
    def put(self, data):
        """Require X-Signature (new secret, shown once) or stop requiring it."""
        return signals.set_hmac_secret(current_user(), data["enabled"])


@ns.route("/mappings")
class SignalMappings(Resource):
    @require_scope("read")
    @use_schema(ListQuerySchema, location="query", arg="query")
    @responds(SignalMappingSchema, paged=True)
    def get(self, query):
        """My alert-to-order mappings (newest first)."""
        return signals.list_mappings(
            current_user(), page_limit(query["limit"]), decode_cursor(query["cursor"])
        )

    @require_scope("trade")
    @use_schema(SignalMappingCreateSchema)
    @responds(SignalMappingSchema, 201, "Created")
    def post(self, data):
        """Save a mapping: alert name -> symbol, side, quantity, product, type on an account."""
        return signals.create_mapping(current_user(), data), 201


@ns.route("/mappings/<int:mapping_id>")
class SignalMappingItem(Resource):
    @require_scope("read")
    @responds(SignalMappingSchema)
    def get(self, mapping_id):
        """One mapping."""
        return signals.get_mapping(current_user(), mapping_id)

    @require_scope("trade")
    @use_schema(SignalMappingUpdateSchema)
    @responds(SignalMappingSchema)
    def patch(self, mapping_id, data):
        """Edit a mapping (later signals use the new values)."""
        return signals.update_mapping(current_user(), mapping_id, data)

    @require_scope("trade")
    @responds(None, code=204, description="Deleted")
    def delete(self, mapping_id):
        """Delete a mapping (its signals are kept)."""
        signals.delete_mapping(current_user(), mapping_id)
        return None, 204
