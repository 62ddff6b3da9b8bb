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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import current_app, g, request
from flask_restx import Namespace
from flask_restx import fields as restx_fields
from flask_restx.model import SchemaModel
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from backend.errors import ApiError
from backend.extensions import api

# --- the contract every input field keeps (applied centrally, so a new field gets it for free) ---

# Integer ids and counts live in INTEGER columns (32-bit on PostgreSQL); a wider value is refused
# with a 422 before it reaches a query that would overflow.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Money and prices are Numeric(20, 4) / Numeric(18, 4) (backend/models): an input decimal has at
# most 4 decimal places and 14 integer digits, so it is stored exactly as it was accepted.
DECIMAL_PLACES = 4
DECIMAL_INTEGER_DIGITS = 14
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
QUERY_TRUE, QUERY_FALSE = {"true"}, {"false"}


def _schema_name(schema_cls: type[Schema]) -> str:
    name = schema_cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and len(name) > 6 else name


_names: dict[type[Schema], str] = {}  # one Swagger definition name per schema class, never shared


def definition_name(schema: type[Schema] | Schema) -> str:
    """The unique definition name of a schema class.

    ``OrderSchema`` is ``Order``; when another class already took that name (``Risk`` in the
    analytics and admin namespaces) the later one is qualified by its domain (``AdminRisk``).
    """
    resolved = resolve_schema_cls(schema)  # apispec passes classes, instances or registry names
    schema_cls = resolved[0] if isinstance(resolved, list) else resolved
    if schema_cls in _names:
        return _names[schema_cls]
    base = _schema_name(schema_cls)
    taken = set(_names.values())
    name = base
    if name in taken:
        parts = schema_cls.__module__.split(".")
        domain = parts[2] if len(parts) > 2 and parts[:2] == ["backend", "api"] else parts[-1]
        name = "".join(w.capitalize() for w in domain.split("_")) + base
        counter = 2
        while name in taken:
            name, counter = f"{base}{counter}", counter + 1
    _names[schema_cls] = name
    return name


def _contract_attributes(self, field: fields.Field, ret: dict, **kwargs) -> dict:
    """apispec attribute function: document what ``_harden_field`` enforces."""
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    if isinstance(field, fields.Decimal):
        # Sent and accepted as a plain decimal string, never a float and never in exponent form.
        for key in ("minimum", "maximum"):
            if key in ret:
                ret[f"x-{key}"] = ret.pop(key)
        ret.update(type="string", format="decimal", pattern=DECIMAL_PATTERN)
        bounds = []
        for v in ranges:
            if v.min is not None:
                bounds.append(f"{'>=' if v.min_inclusive else '>'} {v.min}")
            if v.max is not None:
                bounds.append(f"{'<=' if v.max_inclusive else '<'} {v.max}")
        note = f"Decimal string, at most {DECIMAL_PLACES} decimal places"
        if bounds:
            note += "; " + ", ".join(bounds)
        ret["description"] = f"{ret['description']} ({note})" if ret.get("description") else note
    elif isinstance(field, fields.Integer):
        ret.setdefault("minimum", INT32_MIN)
        ret.setdefault("maximum", INT32_MAX)
        ret["minimum"] = max(int(ret["minimum"]), INT32_MIN)
        ret["maximum"] = min(int(ret["maximum"]), INT32_MAX)
    if isinstance(field, fields.Number) and not isinstance(field, fields.Decimal):
        # OAS 2.0: exclusiveMinimum/Maximum are booleans beside minimum/maximum.
        if any(v.min is not None and not v.min_inclusive for v in ranges):
            ret["exclusiveMinimum"] = True
        if any(v.max is not None and not v.max_inclusive for v in ranges):
            ret["exclusiveMaximum"] = True
    return {}


def _finish_spec(spec: dict) -> None:
    """What only the running app knows: the configured ``limit`` ceiling; int path bounds."""
    max_limit = int(current_app.config["PAGINATION_MAX_LIMIT"])
    for item in spec.get("paths", {}).values():
        for op in [item, *(v for v in item.values() if isinstance(v, dict))]:
            for param in op.get("parameters", []) if isinstance(op.get("parameters"), list) else []:
                if param.get("in") == "query" and param.get("name") == "limit":
                    param["maximum"] = max_limit
                elif param.get("in") == "path" and param.get("type") == "integer":
                    param.setdefault("minimum", 0)
                    param.setdefault("maximum", INT32_MAX)


api.spec_hooks.append(_finish_spec)
_ma_plugin = MarshmallowPlugin(schema_name_resolver=definition_name)
_spec = APISpec(title="models", version="1", openapi_version="2.0", plugins=[_ma_plugin])
_ma_plugin.converter.add_attribute_function(_contract_attributes)
_registered: dict[type[Schema], str] = {}
_doc = Namespace("_doc_helpers", validate=False)  # only used for its doc decorators
_REF = re.compile(r'"\$ref":\s*"#/definitions/([^"]+)"')


def model_for(schema: type[Schema] | Schema) -> SchemaModel:
    """Register ``schema`` (and its nested schemas) as Swagger definitions; return its model."""
    schema_cls = schema if isinstance(schema, type) else type(schema)
    if schema_cls not in _registered:
        name = definition_name(schema_cls)
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
    examples = {n: getattr(c, "swagger_example", None) for c, n in _names.items()}
    for name in new:
        definition = _json_safe(_spec.components.schemas[name])
        if examples.get(name) is not None:
            # A whole-body example that works on a fresh `make run` (Swagger UI's "Try it out");
            # one built from field types alone would send price "string" or account 1.
            definition["example"] = examples[name]
        api.models[name] = MarshmallowModel(name, definition)
    for name in new:
        model = api.models[name]
        refs = set(_REF.findall(json.dumps(model._schema))) - {name}
        model.__parents__ = [api.models[r] for r in sorted(refs) if r in api.models]


def _field_messages(messages: Any) -> Any:
    """Every leaf of ``details.fields`` is a list of messages (marshmallow sometimes gives a string)."""
    if isinstance(messages, dict):
        return {str(k): _field_messages(v) for k, v in messages.items()}
    if isinstance(messages, list | tuple):
        return [m if isinstance(m, str | dict) else str(m) for m in messages]
    return [str(messages)]


def validation_error(exc: ValidationError, location: str = "body") -> ApiError:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    names = ", ".join(sorted(str(k) for k in messages))
    return ApiError(
        422,
        "VALIDATION_ERROR",
        f"Invalid {location}: check field(s) {names}.",
        {"fields": _field_messages(messages)},
    )


def load_json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "BAD_REQUEST", "The request body is not valid JSON.")
    return data


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "Must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid UTF-8 text (no lone surrogates)."
    return None


def _text_errors(data: Any, path: str, out: dict[str, list[str]], depth: int = 0) -> None:
    """Collect strings (keys included) that no database column can store: NUL, lone surrogates."""
    if depth > 64:  # get_json already bounds nesting; this only bounds our walk
        return
    if isinstance(data, str):
        problem = _bad_text(data)
        if problem:
            out[path or "_schema"] = [problem]
    elif isinstance(data, dict):
        for key, value in data.items():
            key_text = str(key)
            sub = f"{path}.{key_text}" if path else key_text
            if _bad_text(key_text):
                out[path or "_schema"] = [f"Key {key_text!r}: {_bad_text(key_text)}"]
            _text_errors(value, sub, out, depth + 1)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _text_errors(value, f"{path}.{i}" if path else str(i), out, depth + 1)


def check_text(data: Any, location: str = "body") -> None:
    """422 naming the field when ``data`` holds text PostgreSQL cannot store (checked on both DBs)."""
    errors: dict[str, list[str]] = {}
    _text_errors(data, "", errors)
    if errors:
        names = ", ".join(sorted(errors))
        raise ApiError(
            422, "VALIDATION_ERROR", f"Invalid {location}: check field(s) {names}.", {"fields": errors}
        )


def load(schema: Schema, data: Any, location: str = "body") -> Any:
    check_text(data, location)
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


def _query_names(schema_cls: type[Schema]) -> frozenset[str]:
    schema = _schema_instance(schema_cls, False, None, "query")
    return frozenset(f.data_key or name for name, f in schema.load_fields.items())


def reject_unknown_query(allowed: frozenset[str] | set[str]) -> None:
    """Unknown query parameters are a 422 naming them, never silently ignored."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            {"fields": {name: ["Unknown parameter."] for name in unknown}},
        )


def _check_path_args(kwargs: dict) -> None:
    check_text({k: v for k, v in kwargs.items() if isinstance(v, str)}, "path")


def use_schema(schema_cls: type[Schema], location: str = "json", arg: str = "data") -> Callable:
    """Load the body (``json``) or query string (``query``) with ``schema_cls`` into kwarg ``arg``."""

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            _check_path_args(kwargs)
            schema = _schema_instance(schema_cls, False, None, location)
            if location == "json":
                kwargs[arg] = load(schema, load_json_body(), "body")
            else:
                reject_unknown_query(_query_names(schema_cls))
                g.query_checked = True
                raw = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
                kwargs[arg] = load(schema, raw, "query")
            return func(*args, **kwargs)

        if location == "json":
            wrapper._body_schema = schema_cls
            documented = _doc.expect(model_for(schema_cls))(wrapper)
            return _doc.response(
                415, "Error envelope: the body is not application/json", model_for(ErrorEnvelopeSchema)
            )(documented)
        wrapper._query_schema = schema_cls
        return _doc.doc(params=_query_params(schema_cls))(wrapper)

    return decorator


def _selected_fields() -> tuple[str, ...] | None:
    raw = request.args.get("fields")
    if not raw:
        return None
    return tuple(f.strip() for f in raw.split(",") if f.strip())


# --- central hardening of every schema instance --------------------------------------------------


def _int_in_column(value: int) -> None:
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValidationError(f"Must be between {INT32_MIN} and {INT32_MAX}.")


def _decimal_fits(value: Decimal) -> None:
    if value is None:
        return
    if not value.is_finite():
        raise ValidationError("Must be a finite number.")
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -DECIMAL_PLACES
        and value != value.quantize(Decimal(1).scaleb(-DECIMAL_PLACES))
    ):
        raise ValidationError(f"Must have at most {DECIMAL_PLACES} decimal places.")
    if value.adjusted() >= DECIMAL_INTEGER_DIGITS:
        raise ValidationError(f"Must be less than 1e{DECIMAL_INTEGER_DIGITS} in absolute value.")


def _plain_decimal(serialize: Callable) -> Callable:
    def _serialize(value, attr, obj, **kwargs):
        out = serialize(value, attr, obj, **kwargs)
        if isinstance(out, str) and ("E" in out or "e" in out):
            return format(Decimal(out), "f")
        return out

    return _serialize


def _aware_datetime(serialize: Callable) -> Callable:
    def _serialize(value, attr, obj, **kwargs):
        # SQLite hands back naive datetimes; everything is stored in UTC, so say so.
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return serialize(value, attr, obj, **kwargs)

    return _serialize


def _only_bool(field: fields.Boolean) -> Callable:
    deserialize = field._deserialize

    def _deserialize(value, attr, data, **kwargs):
        # 1 == True in a set look-up: check the type, so 0, 1 and "true" are refused in a body.
        if not isinstance(value, bool):
            raise field.make_error("invalid", input=value)
        return deserialize(value, attr, data, **kwargs)

    return _deserialize


def _harden_field(field: fields.Field, location: str, seen: set[int]) -> None:
    if getattr(field, "_hardened", False):  # a schema instance shared by several parents
        return
    field._hardened = True
    if isinstance(field, fields.Nested):
        nested = field.schema
        if id(nested) not in seen:
            seen.add(id(nested))
            for sub in nested.fields.values():
                _harden_field(sub, location, seen)
        return
    if isinstance(field, fields.List):
        _harden_field(field.inner, location, seen)
    elif isinstance(field, fields.Tuple):
        for sub in field.tuple_fields:
            _harden_field(sub, location, seen)
    elif isinstance(field, fields.Dict):
        for sub in (field.key_field, field.value_field):
            if sub is not None:
                _harden_field(sub, location, seen)
    elif isinstance(field, fields.Boolean):
        if location == "query":
            field.truthy, field.falsy = QUERY_TRUE, QUERY_FALSE
        else:
            field._deserialize = _only_bool(field)
    elif isinstance(field, fields.Integer):
        # A JSON body carries numbers: "1", 1.5 and true are refused. A query string is text.
        field.strict = location != "query"
        field.validators.append(_int_in_column)
    elif isinstance(field, fields.Decimal):
        field.validators.append(_decimal_fits)
        field._serialize = _plain_decimal(field._serialize)
    elif isinstance(field, fields.DateTime):
        field._serialize = _aware_datetime(field._serialize)


@functools.lru_cache(maxsize=1024)
def _cached_schema(
    schema_cls: type[Schema], many: bool, only: tuple[str, ...] | None, location: str = "json"
) -> Schema:
    # Building a schema deep-copies every declared field (~0.3 ms); instances hold no per-call
    # state, so one per (class, many, only, location) is reused. Bounded: ``only`` comes from
    # ?fields=. Hardening mutates this instance's own field copies, never the class.
    schema = schema_cls(many=many, only=only)
    seen = {id(schema)}
    for field in schema.fields.values():
        _harden_field(field, location, seen)
    return schema


def _schema_instance(
    schema_cls: type[Schema], many: bool, only: tuple[str, ...] | None, location: str = "json"
) -> Schema:
    if only:
        declared = _schema_fields(schema_cls)
        unknown = sorted(set(only) - declared)
        if unknown:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                f"Unknown field(s) in 'fields': {', '.join(unknown)}.",
                {"fields": {"fields": [f"Unknown field: {name}" for name in unknown]}},
            )
    return _cached_schema(schema_cls, many, only, location)


@functools.lru_cache(maxsize=512)
def _schema_fields(schema_cls: type[Schema]) -> frozenset[str]:
    # Top-level names only: a dotted name (a.b) is not a field of the response, whatever it nests.
    return frozenset(schema_cls().fields)


_page_schemas: dict[type[Schema], type[Schema]] = {}


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The list envelope ``{items: [...], next_cursor}`` for ``item_schema``."""
    if item_schema not in _page_schemas:
        name = f"{definition_name(item_schema)}PageSchema"
        _page_schemas[item_schema] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "next_cursor": fields.String(allow_none=True, metadata={"description": "Pass as ?cursor="}),
            },
            name=name,
        )
    return _page_schemas[item_schema]


# Every operation may answer these (auth, validation, rate limit; 503 when a backing service is
# down: the app fails closed). A 409 is documented only where the operation declares it
# (:func:`conflicts`).
ERROR_RESPONSES = (400, 401, 403, 404, 422, 429, 503)


def conflicts(*codes: str) -> Callable:
    """Declare the 409 codes (docs/errors.md) an operation can answer: the spec documents 409 there
    and nowhere else. Under TESTING a 409 from an operation that does not declare it fails the
    request (backend/errors.py), so the declarations follow the code paths the suite exercises."""
    if not codes:
        raise ValueError("name the 409 codes the operation can answer")

    def decorator(func: Callable) -> Callable:
        description = "Conflict with the current state: " + ", ".join(f"`{c}`" for c in codes)
        return _doc.doc(responses={"409": (description, model_for(ErrorEnvelopeSchema), {})})(func)

    return decorator


def declares_conflict(view_func: Callable | None, method: str) -> bool:
    """Whether the Resource behind ``view_func`` documents a 409 for ``method``."""
    view_class = getattr(view_func, "view_class", None)
    handler = getattr(view_class, method.lower(), None)
    return "409" in (getattr(handler, "__apidoc__", {}) or {}).get("responses", {})


# Marks a POST that only reads (a body too long for a query string): it changes nothing, so it
# needs the ``read`` scope only.
read_only = _doc.doc(vendor={"x-read-only": True})

# Marks an action endpoint (POST/PATCH/DELETE) that deliberately takes no request body.
no_body = _doc.doc(vendor={"x-no-body": True})


def _error_responses(func: Callable) -> dict:
    error_model = model_for(ErrorEnvelopeSchema)
    codes = list(ERROR_RESPONSES)
    return {str(err): ("Error envelope (see docs/errors.md)", error_model, {}) for err in codes}


def _check_query(func: Callable, allowed: frozenset[str]) -> None:
    # Operations without a query schema take no query parameters (only ``fields`` where a
    # response schema is dumped); a query schema checks its own (``use_schema``).
    if getattr(func, "_query_schema", None) is None and not g.get("query_checked"):
        reject_unknown_query(allowed)


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
        # A wire protocol we do not own (UDF) reads its own parameters and tolerates extra ones.
        allowed = None if passthrough else frozenset({"fields"} if schema_cls is not None else set())

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if allowed is not None:
                _check_query(func, allowed)
            _check_path_args(kwargs)
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

        responses = _error_responses(func)
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
        responses = _error_responses(func)
        responses["200"] = (description, field, {})
        # errors are the JSON envelope: OAS 2.0 lists both under the operation's produces
        return _doc.doc(responses=responses, produces=[mimetype, "application/json"])(func)

    return decorator


def public(resource_cls):
    """Mark a Resource as reachable without authentication (health, docs, login...).

    The spec says so too (``security: []``), so clients and generators send no credentials.
    """
    resource_cls.public = True
    return _doc.doc(security=[])(resource_cls)


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
