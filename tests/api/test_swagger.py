"""The one Swagger document: valid OAS 2.0, every namespace, every operation documented."""

from flask_restx import schemas

EXPECTED_NAMESPACES = {
    "auth",
    "portfolio",
    "orders",
    "market-data",
    "alerts",
    "strategies",
    "backtest",
    "analytics",
    "admin",
}
BODY_METHODS = {"post", "put", "patch"}


def spec(client):
    resp = client.get("/api/swagger.json")
    assert resp.status_code == 200
    return resp.get_json()


def test_spec_is_valid_oas2(client):
    schemas.validate(spec(client))  # raises SchemaValidationError if invalid


def test_every_namespace_is_in_the_document(client):
    doc = spec(client)
    assert {t["name"] for t in doc["tags"]} >= EXPECTED_NAMESPACES
    assert all(p.startswith("/v1/") for p in doc["paths"])
    assert doc["basePath"] == "/api"


def test_bearer_security_scheme(client):
    doc = spec(client)
    assert doc["securityDefinitions"]["Bearer"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": doc["securityDefinitions"]["Bearer"]["description"],
    }
    assert {"Bearer": []} in doc["security"]


def _resolve(doc, schema):
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        assert name in doc["definitions"], f"dangling $ref {name}"
        return doc["definitions"][name]
    return schema


def test_every_operation_documents_request_and_response_schemas(client):
    doc = spec(client)
    problems = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            where = f"{method.upper()} {path}"
            success = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            if not success:
                problems.append(f"{where}: no 2xx response")
            for code, resp in success.items():
                if code != "204" and "schema" not in resp:
                    problems.append(f"{where}: {code} has no schema")
                elif "schema" in resp:
                    target = resp["schema"].get("items", resp["schema"])
                    _resolve(doc, target)
            if method in BODY_METHODS:
                params = op.get("parameters", []) + item.get("parameters", [])
                bodies = [p for p in params if p.get("in") == "body"]
                form = [p for p in params if p.get("in") == "formData"]  # multipart uploads
                if not bodies and not form and not op.get("x-no-body"):
                    problems.append(f"{where}: no body schema")
                for b in bodies:
                    _resolve(doc, b["schema"])
            if "422" not in op["responses"]:
                problems.append(f"{where}: error envelope not documented")
    assert not problems, "\n".join(problems)


def test_nested_schemas_are_emitted(client):
    doc = spec(client)
    assert "ErrorBody" in doc["definitions"]
    assert doc["definitions"]["ErrorEnvelope"]["properties"]["error"]["$ref"] == "#/definitions/ErrorBody"


def test_docs_page_uses_local_assets(client):
    import re

    html = client.get("/api/docs").get_data(as_text=True)
    assert "swagger-ui-bundle.js" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert not [u for u in external if "localhost" not in u], external
