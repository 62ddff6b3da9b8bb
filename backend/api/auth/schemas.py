"""Schemas for registration, login, tokens, the current user and API keys."""

from marshmallow import Schema, fields, validate

PASSWORD = validate.Length(min=10, max=256, error="Password must be 10 to 256 characters long.")


class RegisterSchema(Schema):
    swagger_example = {"email": "trader@example.com", "password": "correct-horse-battery"}
    email = fields.Email(required=True, validate=validate.Length(max=255))
    password = fields.String(required=True, load_only=True, validate=PASSWORD)


class LoginSchema(Schema):
    swagger_example = {"email": "trader@example.com", "password": "correct-horse-battery"}
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class RefreshSchema(Schema):
    swagger_example = {"refresh_token": "<refresh_token from POST /auth/login>"}
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime, seconds"})


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(dump_only=True)
    role = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    last_login_at = fields.DateTime(dump_only=True, allow_none=True)


class PasswordChangeSchema(Schema):
    swagger_example = {
        "current_password": "correct-horse-battery",
        "new_password": "correct-horse-battery-staple",
    }
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)


class ApiKeyCreateSchema(Schema):
    swagger_example = {"name": "my trading bot", "scopes": ["read", "trade"]}
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(["read", "trade"])),
        required=True,
        validate=validate.Length(min=1),
    )


class ApiKeySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True)
    scopes = fields.List(fields.String(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(dump_only=True, metadata={"description": "Shown once; only a hash is stored."})


class MessageSchema(Schema):
    message = fields.String(required=True)
