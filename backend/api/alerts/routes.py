"""The alerts namespace: rule CRUD, pause/resume, test fire, history, webhook secret."""

from flask_restx import Namespace, Resource

from backend.api.alerts.schemas import (
    AlertHistoryQuerySchema,
    AlertHistorySchema,
    AlertListQuerySchema,
    AlertRuleCreateSchema,
    AlertRuleSchema,
    AlertRuleUpdateSchema,
    WebhookAttemptSchema,
    WebhookSecretSchema,
)
from backend.api.common import conflicts, decode_cursor, no_body, page_limit, responds, use_schema
from backend.api.security import current_user, require_scope
from backend.services import alerts

ns = Namespace(
    "alerts", description="Price, indicator, P&L and signal alerts with signed webhooks", validate=False
)


@ns.route("")
class Alerts(Resource):
    @require_scope("read")
    @use_schema(AlertListQuerySchema, location="query", arg="query")
    @responds(AlertRuleSchema, paged=True)
    def get(self, query):
        """List my alert rules (newest first), optionally by status or symbol."""
        return alerts.list_rules(
            current_user(),
            query["status"],
            query["symbol"],
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
        )

    @require_scope("trade")
    @use_schema(AlertRuleCreateSchema)
    @responds(AlertRuleSchema, code=201, description="Created")
    def post(self, data):
        """Create an alert rule (per-user cap on active rules)."""
        return alerts.create_rule(current_user(), data), 201


@ns.route("/history")
class AlertHistory(Resource):
    @require_scope("read")
    @use_schema(AlertHistoryQuerySchema, location="query", arg="query")
    @responds(AlertHistorySchema, paged=True)
    def get(self, query):
        """Firings (newest first), optionally for one rule and a time range."""
        return alerts.list_history(
            current_user(),
            query["rule_id"],
            query["from_"],
            query["to"],
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
        )


@ns.route("/history/<int:history_id>/attempts")
class AlertHistoryAttempts(Resource):
    @require_scope("read")
    @responds(WebhookAttemptSchema, many=True)
    def get(self, history_id):
        """Every webhook delivery attempt for one firing."""
        return alerts.webhook_attempts(current_user(), history_id)


@ns.route("/webhook-secret")
class WebhookSecret(Resource):
    @require_scope("read")
    @responds(WebhookSecretSchema)
    def get(self):
        """Whether a signing secret exists (the secret itself is never shown again)."""
        return alerts.webhook_secret_info(current_user().id)


@ns.route("/webhook-secret/rotate")
class WebhookSecretRotate(Resource):
    @require_scope("trade")
    @no_body
    @responds(WebhookSecretSchema)
    def post(self):
        """Create or replace the HMAC signing secret; the response is the only time it is shown."""
        return alerts.rotate_webhook_secret(current_user())


@ns.route("/<int:rule_id>")
class AlertItem(Resource):
    @require_scope("read")
    @responds(AlertRuleSchema)
    def get(self, rule_id):
        """One alert rule."""
        return alerts.get_rule(current_user(), rule_id)

    @require_scope("trade")
    @use_schema(AlertRuleUpdateSchema)
    @responds(AlertRuleSchema)
    @conflicts("CONFLICT")
    def patch(self, rule_id, data):
        """Edit a rule; a new symbol/params re-derives its armed state."""
        return alerts.update_rule(current_user(), rule_id, data)

    @require_scope("trade")
    @responds(None, code=204, description="Deleted")
    def delete(self, rule_id):
        """Delete a rule."""
        alerts.delete_rule(current_user(), rule_id)
        return None, 204


@ns.route("/<int:rule_id>/pause")
class AlertPause(Resource):
    @require_scope("trade")
    @no_body
    @responds(AlertRuleSchema)
    @conflicts("CONFLICT")
    def post(self, rule_id):
        """Pause: the rule is kept but not evaluated."""
        return alerts.set_paused(current_user(), rule_id, True)


@ns.route("/<int:rule_id>/resume")
class AlertResume(Resource):
    @require_scope("trade")
    @no_body
    @responds(AlertRuleSchema)
    @conflicts("CONFLICT")
    def post(self, rule_id):
        """Resume a paused rule (it keeps its armed state)."""
        return alerts.set_paused(current_user(), rule_id, False)


@ns.route("/<int:rule_id>/test")
class AlertTest(Resource):
    @require_scope("trade")
    @no_body
    @responds(AlertHistorySchema, code=201, description="Test notification sent")
    def post(self, rule_id):
        """Fire a test notification (history row flagged is_test, socket event, webhook if set)."""
        return alerts.test_fire(current_user(), rule_id), 201
