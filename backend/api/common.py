"""Marshmallow is the single model source: request loading, response dumping and Swagger models.

* ``model_for(Schema)`` turns a Marshmallow schema into a restx ``SchemaModel`` through apispec's
  MarshmallowPlugin (OpenAPI 2.0), nested schemas included.
* ``use_schema`` loads a JSON body or query string; a ``ValidationError`` becomes our 422 envelope.
* ``responds`` dumps the return value with the schema and documents it.
* ``page_of`` + ``FieldsQuery`` implement the shared list conventions (cursor pagination, ``fields=``).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, request
from flask_restx import Namespace
from flask_restx import fields as restx_fields
from flask_restx.model import SchemaModel
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from backend.errors import ApiError
from backend.extensions import api

_ma_plugin = MarshmallowPlugin()
_spec = APISpec(title="models", version="1", openapi_version="2.0", plugins=[_ma_plugin])
_registered: dict[type[Schema], str] = {}
_doc = Namespace("_doc_helpers", validate=False)  # only used for its doc decorators
_REF = re.compile(r'"\$ref":\s*"#/definitions/([^"]+)"')


def _schema_name(schema_cls: type[Schema]) -> str:
    name = schema_cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and len(name) > 6 else name


def model_for(schema: type[Schema] | Schema) -> SchemaModel:
    """Register ``schema`` (and its nested schemas) as Swagger definitions; return its model."""
    schema_cls = schema if isinstance(schema, type) else type(schema)
    if schema_cls not in _registered:
        name = _schema_name(schema_cls)
        if name not in _spec.components.schemas:
            _spec.components.schema(name, schema=schema_cls)
        _registered[schema_cls] = name
        _sync_definitions()
    return api.models[_registered[schema_cls]]


class MarshmallowModel(SchemaModel):
    """A SchemaModel whose nested ``$ref`` targets are declared as parents.

    restx only emits definitions it reaches through parents or fields; listing the nested
    schemas there makes it emit them, while ``__schema__`` stays the plain converted schema
    (the default would wrap it in ``allOf``).
    """

    @property
    def __schema__(self) -> dict:
        return self._schema

    def __deepcopy__(self, memo: dict) -> MarshmallowModel:
        # restx deep-copies the doc of every decorated view; models are shared, immutable
        # definitions, and copying them dominated start-up time.
        return self


_NUMERIC_KEYS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def _json_safe(value: Any) -> Any:
    """Make apispec output valid OAS 2.0 JSON.

    Decimal fields (``as_string=True``) render their validator bounds as strings or Decimals, and
    optional query parameters carry ``default: null``; Swagger 2 wants numbers and no null default.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "default" and v is None:
                continue
            if k in _NUMERIC_KEYS and isinstance(v, str | Decimal):
                v = float(v)
            out[k] = _json_safe(v)
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sync_definitions() -> None:
    """Turn definitions apispec added since the last call into restx models (incremental)."""
    new = [name for name in _spec.components.schemas if name not in api.models]
    for name in new:
        api.models[name] = MarshmallowModel(name, _json_safe(_spec.components.schemas[name]))
    for name in new:
        model = api.models[name]
        refs = set(_REF.findall(json.dumps(model._schema))) - {name}
        model.__parents__ = [api.models[r] for r in sorted(refs) if r in api.models]


def validation_error(exc: ValidationError, location: str = "body") -> ApiError:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    names = ", ".join(sorted(str(k) for k in messages))
    return ApiError(
        422, "VALIDATION_ERROR", f"Invalid {location}: check field(s) {names}.", {"fields": messages}
    )


def load_json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "BAD_REQUEST", "The request body is not valid JSON.")
    return data


def load(schema: Schema, data: Any, location: str = "body") -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_error(exc, location) from exc


def _query_params(schema_cls: type[Schema]) -> dict[str, dict]:
    params = _ma_plugin.converter.schema2parameters(schema_cls, location="query")
    out = {}
    for p in params:
        spec = _json_safe({k: v for k, v in p.items() if k != "name"})
        out[p["name"]] = spec
    return out


def use_schema(schema_cls: type[Schema], location: str = "json", arg: str = "data") -> Callable:
    """Load the body (``json``) or query string (``query``) with ``schema_cls`` into kwarg ``arg``."""

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            schema = _schema_instance(schema_cls, False, None)
            if location == "json":
                kwargs[arg] = load(schema, load_json_body(), "body")
            else:
                raw = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
                kwargs[arg] = load(schema, raw, "query")
            return func(*args, **kwargs)

        if location == "json":
            return _doc.expect(model_for(schema_cls))(wrapper)
        return _doc.doc(params=_query_params(schema_cls))(wrapper)

    return decorator


def _selected_fields() -> tuple[str, ...] | None:
    raw = request.args.get("fields")
    if not raw:
        return None
    return tuple(f.strip() for f in raw.split(",") if f.strip())


@functools.lru_cache(maxsize=1024)
def _cached_schema(schema_cls: type[Schema], many: bool, only: tuple[str, ...] | None) -> Schema:
    # Building a schema deep-copies every declared field (~0.3 ms); instances hold no per-call
    # state, so one per (class, many, only) is reused. Bounded: ``only`` comes from ?fields=.
    return schema_cls(many=many, only=only)


def _schema_instance(schema_cls: type[Schema], many: bool, only: tuple[str, ...] | None) -> Schema:
    try:
        return _cached_schema(schema_cls, many, only)
    except ValueError as exc:
        unknown = sorted(set(only or ()) - set(schema_cls().fields))
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"Unknown field(s) in 'fields': {', '.join(unknown)}.",
            {"fields": {"fields": [f"Unknown field: {name}" for name in unknown]}},
        ) from exc


_page_schemas: dict[type[Schema], type[Schema]] = {}


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The list envelope ``{items: [...], next_cursor}`` for ``item_schema``."""
    if item_schema not in _page_schemas:
        name = f"{_schema_name(item_schema)}PageSchema"
        _page_schemas[item_schema] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "next_cursor": fields.String(allow_none=True, metadata={"description": "Pass as ?cursor="}),
            },
            name=name,
        )
    return _page_schemas[item_schema]


ERROR_RESPONSES = (400, 401, 403, 404, 422, 429)

# Marks an action endpoint (POST/PATCH/DELETE) that deliberately takes no request body.
no_body = _doc.doc(vendor={"x-no-body": True})


def responds(
    schema_cls: type[Schema] | None,
    code: int = 200,
    description: str = "OK",
    many: bool = False,
    paged: bool = False,
    passthrough: bool = False,
) -> Callable:
    """Dump the view's return value with ``schema_cls`` (honouring ``?fields=``) and document it.

    The view returns the object, or ``(object, status)`` / ``(object, status, headers)``.
    With ``paged=True`` it returns ``Page(items, next_cursor)``. ``passthrough=True`` documents the
    schema but returns the value as built, for wire protocols we do not own (TradingView UDF).
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            result = func(*args, **kwargs)
            status, headers = code, {}
            if isinstance(result, tuple):
                result, status, *rest = result
                headers = rest[0] if rest else {}
            if schema_cls is None or passthrough:
                return ("", status, headers) if status == 204 else (result, status, headers)
            only = _selected_fields()
            if paged:
                items = _schema_instance(schema_cls, True, only).dump(result.items)
                cursor = result.next_cursor
                if isinstance(cursor, dict):  # services return a raw keyset position
                    cursor = encode_cursor(cursor)
                return {"items": items, "next_cursor": cursor}, status, headers
            return _schema_instance(schema_cls, many, only).dump(result), status, headers

        error_model = model_for(ErrorEnvelopeSchema)
        responses = {
            str(err): ("Error envelope (see docs/errors.md)", error_model, {}) for err in ERROR_RESPONSES
        }
        if schema_cls is None:
            responses[str(code)] = (description, None, {})
        else:
            model = model_for(page_of(schema_cls) if paged else schema_cls)
            responses[str(code)] = (description, [model] if many else model, {})
        return _doc.doc(responses=responses)(wrapper)

    return decorator


class BinaryFile(restx_fields.Raw):
    """OAS2 ``type: file``: the way Swagger 2 documents a binary body (e.g. image/png)."""

    __schema_type__ = "file"


def raw_response(field: restx_fields.Raw, description: str, mimetype: str) -> Callable:
    """Document a non-JSON 200 body (PNG, plain text) plus the error envelopes.

    The view returns a ready ``Response``; ``responds`` would dump JSON.
    """

    def decorator(func: Callable) -> Callable:
        error_model = model_for(ErrorEnvelopeSchema)
        responses = {
            str(err): ("Error envelope (see docs/errors.md)", error_model, {}) for err in ERROR_RESPONSES
        }
        responses["200"] = (description, field, {})
        return _doc.doc(responses=responses, produces=[mimetype])(func)

    return decorator


def public(resource_cls):
    """Mark a Resource as reachable without authentication (health, docs, login...)."""
    resource_cls.public = True
    return resource_cls


# --- shared schemas ---------------------------------------------------------------------------


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True)
    details = fields.Dict(required=True)
    request_id = fields.String(allow_none=True)


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class CommaList(fields.List):
    """A list given as ``a,b,c`` in a query string (or as repeated parameters)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


class ListQuerySchema(Schema):
    """Base for list endpoints: ``limit``, ``cursor`` and ``fields``."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=None, validate=validate.Range(min=1))
    cursor = fields.String(load_default=None)
    fields_ = fields.String(data_key="fields", load_default=None, metadata={"description": "a,b,c"})


def page_limit(requested: int | None) -> int:
    max_limit = current_app.config["PAGINATION_MAX_LIMIT"]
    if requested is None:
        return min(current_app.config["PAGINATION_DEFAULT_LIMIT"], max_limit)
    if requested > max_limit:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"limit must be at most {max_limit}.",
            {"fields": {"limit": [f"Must be less than or equal to {max_limit}."]}},
        )
    return requested


def encode_cursor(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict):
            raise ValueError("cursor is not an object")
        return value
    except (ValueError, json.JSONDecodeError) as exc:
        raise ApiError(
            422, "VALIDATION_ERROR", "cursor is malformed.", {"fields": {"cursor": ["Malformed cursor."]}}
        ) from exc
