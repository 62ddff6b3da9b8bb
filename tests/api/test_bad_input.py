"""Bad input never gives a 500: walk every body-taking operation in the spec and send garbage."""

import re

import pytest

GARBAGE = [
    [],
    "a string",
    {"unexpected": {"deeply": ["nested"]}},
    {},
]


def _type_garbage(definition: dict) -> dict:
    """Every declared property set to a value of the wrong type."""
    wrong = {
        "string": 12345,
        "integer": "twelve",
        "number": "NaN-ish",
        "boolean": "maybe",
        "array": "x",
        "object": "x",
    }
    out = {}
    for name, prop in definition.get("properties", {}).items():
        out[name] = wrong.get(prop.get("type", "object"))
    return out


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("post", "put", "patch"):
                yield path, method, op


@pytest.fixture
def spec(client):
    return client.get("/api/swagger.json").get_json()


def test_garbage_bodies_never_500(client, admin, spec):
    _, headers = admin
    failures = []
    sent = 0
    for path, method, op in _operations(spec):
        if "x-no-body" in op:
            continue  # action endpoints ignore bodies; calling them would act, not validate
        url = "/api" + re.sub(r"\{[^}]+\}", "1", path)
        bodies = list(GARBAGE)
        for param in op.get("parameters", []):
            if param.get("in") == "body" and "$ref" in param["schema"]:
                name = param["schema"]["$ref"].split("/")[-1]
                bodies.append(_type_garbage(spec["definitions"][name]))
        for body in bodies:
            resp = client.open(url, method=method.upper(), json=body, headers=headers)
            sent += 1
            if resp.status_code == 500 or resp.get_json().get("error", {}).get("code") == "INTERNAL_ERROR":
                failures.append(f"{method.upper()} {url} {body!r} -> {resp.status_code}")
            elif resp.status_code >= 400:
                assert set(resp.get_json()) == {"error"}, f"{method.upper()} {url}: not an envelope"
    assert sent > 10
    assert not failures, "\n".join(failures)


def test_non_json_bodies_are_415(client, admin, spec):
    _, headers = admin
    wrong = []
    for path, method, op in _operations(spec):
        if "x-no-body" in op:
            continue
        url = "/api" + re.sub(r"\{[^}]+\}", "1", path)
        resp = client.open(
            url,
            method=method.upper(),
            data="a=b",
            headers=headers,
            content_type="application/x-www-form-urlencoded",
        )
        if resp.status_code not in (404, 415, 403, 429):
            wrong.append(f"{method.upper()} {url} -> {resp.status_code}")
    assert not wrong, "\n".join(wrong)
