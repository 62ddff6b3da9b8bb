"""Marshmallow schemas for the alerts namespace."""

from marshmallow import Schema, fields, validate

from backend.api.common import ListQuerySchema
from backend.domain.alerts import RULE_KINDS

KINDS = sorted(RULE_KINDS)
STATUSES = ["active", "paused", "done", "expired"]


class AlertRuleCreateSchema(Schema):
    swagger_example = {
        "name": "SBIN above 900",
        "symbol": "SBIN",
        "kind": "price_above",
        "params": {"level": "900"},
    }
    name = fields.String(load_default=None, validate=validate.Length(max=100))
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    params = fields.Dict(required=True, metadata={"example": {"level": "2500"}})
    recurring = fields.Boolean(load_default=False)
    cooldown_seconds = fields.Integer(load_default=0, validate=validate.Range(min=0, max=7 * 24 * 3600))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    webhook_url = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2048))


class AlertRuleUpdateSchema(Schema):
    swagger_example = {"params": {"level": "950"}, "recurring": True, "cooldown_seconds": 300}
    name = fields.String(allow_none=True, validate=validate.Length(max=100))
    symbol = fields.String(validate=validate.Length(min=1, max=64))
    params = fields.Dict()
    recurring = fields.Boolean()
    cooldown_seconds = fields.Integer(validate=validate.Range(min=0, max=7 * 24 * 3600))
    expires_at = fields.AwareDateTime(allow_none=True)
    webhook_url = fields.String(allow_none=True, validate=validate.Length(max=2048))


class AlertRuleSchema(Schema):
    id = fields.Integer()
    name = fields.String(allow_none=True)
    symbol = fields.String()
    kind = fields.String()
    params = fields.Dict()
    recurring = fields.Boolean()
    cooldown_seconds = fields.Integer()
    expires_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"enum": STATUSES})
    webhook_url = fields.String(allow_none=True)
    fire_count = fields.Integer()
    last_fired_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AlertListQuerySchema(ListQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    symbol = fields.String(load_default=None, validate=validate.Length(max=64))


class AlertHistoryQuerySchema(ListQuerySchema):
    rule_id = fields.Integer(load_default=None)
    from_ = fields.AwareDateTime(data_key="from", load_default=None)
    to = fields.AwareDateTime(load_default=None)


class AlertHistorySchema(Schema):
    id = fields.Integer()
    rule_id = fields.Integer(allow_none=True)
    symbol = fields.String()
    kind = fields.String()
    price = fields.Decimal(as_string=True, allow_none=True)
    message = fields.String()
    payload = fields.Dict()
    is_test = fields.Boolean()
    fired_at = fields.DateTime()
    webhook_status = fields.String(allow_none=True)


class WebhookAttemptSchema(Schema):
    id = fields.Integer()
    attempt = fields.Integer()
    url = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    ok = fields.Boolean()
    duration_ms = fields.Float()
    attempted_at = fields.DateTime()


class WebhookSecretSchema(Schema):
    configured = fields.Boolean(required=True)
    created_at = fields.DateTime(allow_none=True)
    rotated_at = fields.DateTime(allow_none=True)
    secret = fields.String(
        allow_none=True,
        metadata={"description": "Only in the rotate response; store it, it is not shown again"},
    )
