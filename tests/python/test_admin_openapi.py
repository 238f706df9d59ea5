"""The admin API's OpenAPI document (`GET /admin/openapi.json`) against the real gateway:
schemathesis generates requests for every GET operation and for POST /admin/keys and
/admin/teams (plus explicit rotate and revoke calls) and checks every response's status code,
content type, headers and body against the document. Bounded: a few examples per operation,
derandomized, no deadline."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from gateway_fixtures import GATEWAY_KEY, start_gateway
from sim_fixtures import SIM_API_KEY

ADMIN_TOKEN = "admin-token-for-openapi-tests"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = 8
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def config(fleet) -> str:
    oa, vl = fleet["oa"].base_url, fleet["vl"].base_url
    return f"""
[server]

[admin]
token = "{ADMIN_TOKEN}"

[[keys]]
name = "py"
secret = "{GATEWAY_KEY}"

[providers.oa]
kind = "openai"
base_url = "{oa}/v1"
api_key = "{SIM_API_KEY}"
cloud = "openai"
region = "us-east"
jurisdiction = "us"

[providers.vl]
kind = "openai_compatible"
base_url = "{vl}/v1"
api_key = "{SIM_API_KEY}"
cloud = "coreweave"
region = "us-east-04"
jurisdiction = "us"

[deployments.chat-oa]
provider = "oa"
upstream_model = "gpt-4o"
price = {{ input = 2.5, output = 10.0 }}

[deployments.chat-vl]
provider = "vl"
upstream_model = "llama"
price = {{ input = 0.6, output = 0.6 }}

[models.gpt-4o]
deployments = ["chat-oa", "chat-vl"]

[models.llama]
deployments = ["chat-vl"]
fallbacks = ["gpt-4o"]
"""


def call(url: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def admin_gateway(sim_fleet):
    """A gateway with the admin API on, two teams with budgets, and some traffic in its ledger."""
    gw = start_gateway(config(sim_fleet))
    try:
        status, _ = call(gw.url, "/admin/teams", {"name": "search", "budgets": [{"period": "day", "amount_usd": 5}]}, AUTH)
        assert status == 201
        status, key = call(gw.url, "/admin/keys", {"team": "search", "name": "indexer",
                                                     "budgets": [{"period": "month", "amount_usd": 50, "mode": "alert"}]}, AUTH)
        assert status == 201
        for i, (secret, model) in enumerate([(GATEWAY_KEY, "gpt-4o"), (key["secret"], "llama")] * 4):
            status, _ = call(gw.url, "/v1/chat/completions",
                             {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
                             {"Authorization": f"Bearer {secret}"})
            assert status == 200
        # The ledger writes in batches (~200 ms): wait until the overview sees all of it.
        for _ in range(50):
            status, overview = call(gw.url, "/admin/overview?window=1h", headers=AUTH)
            if status == 200 and overview["totals"]["requests"] == 8:
                break
            time.sleep(0.1)
        assert overview["totals"]["requests"] == 8, overview["totals"]
        gw.managed_key_id = key["id"]
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def schema(admin_gateway):
    s = schemathesis.openapi.from_url(admin_gateway.url + "/admin/openapi.json")
    s.config.update(base_url=admin_gateway.url)
    return s


def operations(schema, predicate):
    ops = [r.ok() for r in schema.get_all_operations()]
    return [op for op in ops if predicate(op)]


def fuzz(op, base_url: str) -> int:
    """Runs EXAMPLES generated cases of `op`, validating each response; returns the count."""
    seen = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case):
        case.call_and_validate(base_url=base_url, headers=AUTH, checks=CHECKS, timeout=10)
        seen.append(case)

    run()
    return len(seen)


def test_the_document_is_served_without_a_token_and_covers_every_admin_route(admin_gateway, schema):
    status, doc = call(admin_gateway.url, "/admin/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    documented = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    assert {
        "GET /admin/keys", "POST /admin/keys", "POST /admin/keys/{id}/rotate", "POST /admin/keys/{id}/revoke",
        "GET /admin/teams", "POST /admin/teams", "GET /admin/spend", "GET /admin/budgets",
        "GET /admin/overview", "GET /admin/dashboard", "GET /admin/dashboard/app.js",
        "GET /admin/dashboard/app.css", "GET /admin/openapi.json",
        "GET /admin/concentration", "GET /admin/whatif", "GET /admin/focus", "GET /admin/slo",
        "GET /admin/drill",
    } == documented
    # schemathesis loads all of them (it leaves out the document's own URL).
    labels = {op.label for op in operations(schema, lambda op: True)}
    assert documented - {"GET /admin/openapi.json"} <= labels


def test_every_get_operation_conforms(admin_gateway, schema):
    gets = operations(schema, lambda op: op.method.upper() == "GET")
    assert len(gets) >= 8
    for op in gets:
        assert fuzz(op, admin_gateway.url) >= 1, op.label


@pytest.mark.parametrize("path", ["/admin/keys", "/admin/teams"])
def test_creating_keys_and_teams_conforms(admin_gateway, schema, path):
    op = schema[path]["POST"]
    assert fuzz(op, admin_gateway.url) >= 1


def test_rotate_revoke_and_errors_conform(admin_gateway, schema):
    kid = admin_gateway.managed_key_id
    url = admin_gateway.url
    rotate = schema["/admin/keys/{id}/rotate"]["POST"]
    revoke = schema["/admin/keys/{id}/revoke"]["POST"]
    r = rotate.Case(path_parameters={"id": kid}, body={"grace_secs": 30}).call_and_validate(
        base_url=url, headers=AUTH, checks=CHECKS)
    assert r.status_code == 200 and r.json()["secret"].startswith("sk-")
    r = revoke.Case(path_parameters={"id": kid}).call_and_validate(base_url=url, headers=AUTH, checks=CHECKS)
    assert r.status_code == 200 and r.json()["revoked_ms"] is not None
    r = revoke.Case(path_parameters={"id": "key_does_not_exist"}).call_and_validate(
        base_url=url, headers=AUTH, checks=CHECKS)
    assert r.status_code == 404
    # Without the token: 401 in the documented error shape.
    overview = schema["/admin/overview"]["GET"]
    r = overview.Case(query={"window": "5m"}).call_and_validate(base_url=url, checks=CHECKS)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_token"
    # A bad window: 400, documented.
    r = overview.Case(query={"window": "9y"}).call_and_validate(base_url=url, headers=AUTH, checks=CHECKS)
    assert r.status_code == 400


def test_the_overview_matches_the_traffic(admin_gateway):
    status, o = call(admin_gateway.url, "/admin/overview?window=1h", headers=AUTH)
    assert status == 200
    t = o["totals"]
    assert (t["requests"], t["ok"], t["errors"]) == (8, 8, 0)
    teams = {g["name"]: g["requests"] for g in o["breakdowns"]["team"]}
    assert teams == {"search": 4, "(none)": 4}
    assert sum(g["cost_nanos"] for g in o["breakdowns"]["cloud"]) == t["cost_nanos"] > 0
    assert o["concentration"]["single_cloud_models"] == ["llama"]
    llama = next(m for m in o["concentration"]["models"] if m["model"] == "llama")
    assert llama["fallback_clouds"] == ["openai"] and not llama["no_escape"]
    status, filtered = call(admin_gateway.url, "/admin/overview?window=1h&team=search", headers=AUTH)
    assert filtered["totals"]["requests"] == 4
    assert [d["deployment"] for d in filtered["deployments"] if d["requests"]] == ["chat-vl"]
