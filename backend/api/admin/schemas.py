"""Schemas for the admin namespace."""

from marshmallow import Schema, fields, validate

from backend.api.common import ListQuerySchema


class UserListQuerySchema(ListQuerySchema):
    q = fields.String(load_default=None, validate=validate.Length(max=255))


class AdminUserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_login_at = fields.DateTime(dump_only=True, allow_none=True)


class UserUpdateSchema(Schema):
    swagger_example = {"is_active": True}
    role = fields.String(validate=validate.OneOf(["admin", "trader", "viewer"]))
    is_active = fields.Boolean()


class AuditQuerySchema(ListQuerySchema):
    user_id = fields.Integer(load_default=None)
    action = fields.String(load_default=None, validate=validate.Length(max=64))
    from_ = fields.AwareDateTime(data_key="from", load_default=None, default_timezone=None)
    to = fields.AwareDateTime(load_default=None, default_timezone=None)


class AuditEntrySchema(Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor_email = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    details = fields.Dict()
    hash = fields.String()


class AuditVerifySchema(Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True)
    first_bad_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)


# --- risk -----------------------------------------------------------------------------------------


class KillSwitchSchema(Schema):
    on = fields.Boolean(required=True)
    reason = fields.String(allow_none=True)
    updated_by = fields.Integer(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class KillSwitchUpdateSchema(Schema):
    swagger_example = {"on": True, "reason": "exchange outage: halt every account"}
    on = fields.Boolean(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=255))


class AccountStateSchema(Schema):
    account_id = fields.Integer()
    user_id = fields.Integer()
    user_email = fields.String(allow_none=True)
    name = fields.String()
    mode = fields.String()
    trading_state = fields.String(metadata={"description": "ACTIVE / REDUCING / HALTED / KILLED"})
    breaker = fields.Dict()
    global_kill = fields.Boolean()


# --- operations -----------------------------------------------------------------------------------


class CacheStatsSchema(Schema):
    backend = fields.String()
    entries = fields.Integer(allow_none=True)
    hits = fields.Integer()
    misses = fields.Integer()
    hit_ratio = fields.Float(allow_none=True)
    namespaces = fields.Dict()


class CacheFlushSchema(Schema):
    swagger_example = {"namespace": "quotes"}
    namespace = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


class CacheFlushResultSchema(Schema):
    namespace = fields.String(allow_none=True)
    removed = fields.Integer()


class FeedStatusSchema(Schema):
    running = fields.Boolean()
    leader = fields.Boolean()
    holder = fields.String(allow_none=True)
    generation = fields.Integer()
    restarts = fields.Integer()
    ticks = fields.Integer()
    last_tick_age_seconds = fields.Float(allow_none=True)
    lag_seconds = fields.Float(allow_none=True)
    interval_seconds = fields.Float()
    local_symbols = fields.List(fields.String())
    last_error = fields.String(allow_none=True)
    # where quotes come from: provider (simulated/csv/REST only), or with the Upstox websocket
    # socket | rest | mixed; ``stream``: the websocket's state and counters (docs/brokers.md)
    source = fields.String()
    stream = fields.Dict(allow_none=True)


class FailedJobSchema(Schema):
    id = fields.String()
    user_id = fields.Integer()
    kind = fields.String()
    error = fields.String(allow_none=True)
    worker = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class JobsStatusSchema(Schema):
    available = fields.Boolean()
    queued = fields.Integer()
    running = fields.Integer()
    failed = fields.Integer()
    succeeded = fields.Integer()
    cancelled = fields.Integer()
    recent_failed = fields.List(fields.Nested(FailedJobSchema))


class BrokerStatusSchema(Schema):
    status = fields.String(metadata={"description": "closed/ok, half_open, open, unknown"})
    details = fields.Dict()


class ConfigSchema(Schema):
    config = fields.Dict(metadata={"description": "app.config with credentials replaced by [REDACTED]"})


class VersionSchema(Schema):
    app = fields.String()
    version = fields.String(allow_none=True)
    environment = fields.String(allow_none=True)
    started_at = fields.DateTime()
    uptime_seconds = fields.Float()
    python = fields.String()
    implementation = fields.String()
    platform = fields.String()
    packages = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))


class HealthComponentSchema(Schema):
    name = fields.String()
    status = fields.String(metadata={"enum": ["ok", "warn", "down", "unknown"]})
    detail = fields.Dict()


class HealthSchema(Schema):
    status = fields.String()
    checked_at = fields.DateTime()
    components = fields.List(fields.Nested(HealthComponentSchema))
