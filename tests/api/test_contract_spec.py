"""Issue 17: the spec tells the truth (names, types, bounds, statuses, security)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from marshmallow import Schema

from backend.api import DOMAINS
from backend.api.common import _names, model_for


@pytest.fixture
def doc(client):
    return client.get("/api/swagger.json").get_json()


def _ops(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op


def test_every_schema_class_has_its_own_definition_name(doc):
    # Register every schema of every domain, then no two classes may share a name.
    for package, _ in DOMAINS:
        module = importlib.import_module(f"backend.api.{package}.schemas")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Schema) and cls.__module__ == module.__name__:
                model_for(cls)
    by_name: dict[str, type] = {}
    for cls, name in _names.items():
        assert name not in by_name, f"{name}: {by_name.get(name)} and {cls}"
        by_name[name] = cls
    # and each name's definition is that class's own fields (a collision would reuse another's)
    for cls, name in _names.items():
        if name in doc["definitions"] and cls.__module__.startswith("backend.api."):
            declared = {f.data_key or n for n, f in cls().fields.items()}
            assert set(doc["definitions"][name].get("properties", {})) == declared, name


def test_risk_version_and_kill_switch_point_at_their_own_schemas(doc):
    risk = doc["paths"]["/v1/analytics/risk"]["get"]["responses"]["200"]["schema"]["$ref"]
    version = doc["paths"]["/v1/admin/ops/version"]["get"]["responses"]["200"]["schema"]["$ref"]
    props = doc["definitions"][risk.split("/")[-1]]["properties"]
    assert "var" in " ".join(props).lower() or "exposure" in " ".join(props).lower(), props
    vprops = doc["definitions"][version.split("/")[-1]]["properties"]
    assert "version" in " ".join(vprops).lower() or "commit" in " ".join(vprops).lower(), vprops


def test_decimal_fields_are_documented_as_decimal_strings(doc):
    price = doc["definitions"]["OrderCreate"]["properties"]["price"]
    assert price["type"] == "string" and price["format"] == "decimal" and "pattern" in price
    assert "minimum" not in price
    numbers = [
        (name, prop_name)
        for name, d in doc["definitions"].items()
        for prop_name, p in d.get("properties", {}).items()
        if p.get("format") == "decimal" and p.get("type") != "string"
    ]
    assert not numbers


def test_integers_are_bounded_and_greater_than_zero_is_exclusive(doc):
    for name, d in doc["definitions"].items():
        for prop_name, p in d.get("properties", {}).items():
            if p.get("type") == "integer":
                assert p["maximum"] <= 2**31 - 1 and p["minimum"] >= -(2**31), (name, prop_name)
            if p.get("type") == "number" and p.get("exclusiveMinimum"):
                assert "minimum" in p


def test_limit_has_the_configured_maximum(doc, app):
    limits = [
        p
        for _, _, op in _ops(doc)
        for p in op.get("parameters", [])
        if p["name"] == "limit" and p["in"] == "query"
    ]
    assert limits and all(p["maximum"] == app.config["PAGINATION_MAX_LIMIT"] for p in limits)


def test_public_operations_need_no_security(doc):
    for path in ("/v1/auth/login", "/v1/auth/register", "/v1/auth/refresh"):
        assert doc["paths"][path]["post"]["security"] == []
    assert doc["paths"]["/v1/broker/upstox/callback"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/v1/orders"]["post"]


def test_conflicts_media_type_and_unavailable_are_documented(doc):
    post = doc["paths"]["/v1/orders"]["post"]["responses"]
    assert {"409", "415", "503"} <= set(post)
    assert "503" in doc["paths"]["/v1/broker/connections"]["get"]["responses"]


def test_body_examples_pass_their_own_schema(doc):
    from backend.api.common import _schema_instance

    checked = 0
    for cls, name in list(_names.items()):
        example = getattr(cls, "swagger_example", None)
        if example is None:
            continue
        _schema_instance(cls, False, None).load(example)  # raises ValidationError if it would 422
        if name in doc["definitions"]:
            assert doc["definitions"][name]["example"] == example
        checked += 1
    assert checked >= 3
