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
