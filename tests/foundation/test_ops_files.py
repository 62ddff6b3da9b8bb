"""The Grafana dashboard and the Prometheus alert rules name only metrics /metrics exposes, and every
alert has its runbook entry in docs/operations.md, so none of them can drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "docs" / "ops"
# Series Prometheus makes itself, not the application
PROMETHEUS_OWN = {"up"}
_SKIP = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The series names of a PromQL expression: not functions, keywords, labels, strings or numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors, Grafana's $__rate_interval
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[m.end() :].lstrip().startswith("(") or m.group() in _SKIP:
            continue
        names.add(m.group())
    return names


def exposed_names(client) -> set[str]:
    """Every sample name /metrics can produce, from its TYPE lines (labelled families show no sample
    until first used)."""
    text = client.get("/metrics").get_data(as_text=True)
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        if kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names


def rule_exprs() -> dict[str, str]:
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def dashboard_exprs() -> dict[str, str]:
    doc = json.loads((OPS / "grafana-dashboard.json").read_text())
    return {f"{p['title']} / {t['refId']}": t["expr"] for p in doc["panels"] for t in p.get("targets", [])}


def test_the_name_extractor_sees_series_only():
    expr = 'sum by (le, endpoint) (rate(foo_bucket{a="b(c)"}[$__rate_interval])) / clamp_min(bar, 1e-9) > 0.2'
    assert metric_names(expr) == {"foo_bucket", "bar"}


def test_every_metric_in_the_rules_and_the_dashboard_exists(client):
    exposed = exposed_names(client) | PROMETHEUS_OWN
    assert {"orders_placed_total", "job_duration_seconds_bucket", "trading_global_kill_switch"} <= exposed
    missing = {
        where: sorted(metric_names(expr) - exposed)
        for where, expr in {**rule_exprs(), **dashboard_exprs()}.items()
        if metric_names(expr) - exposed
    }
    assert not missing, f"not in /metrics: {missing}"
    used = set().union(*(metric_names(e) for e in dashboard_exprs().values()))
    # the business metrics of issue 17 are all on the dashboard
    for name in (
        "orders_placed_total",
        "orders_rejected_total",
        "order_fills_total",
        "risk_trips_total",
        "kill_switch_activations_total",
        "socketio_connections",
        "jobs_queued",
        "job_duration_seconds_bucket",
        "db_pool_checked_out",
        "db_pool_overflow",
        "upstream_requests_total",
        "upstream_request_failures_total",
    ):
        assert name in used, name


def test_every_alert_has_a_runbook_entry():
    docs = (ROOT / "docs" / "operations.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#{2,4} (.+)$", docs, flags=re.M)}
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            assert name.lower() in headings, f"docs/operations.md has no '### {name}' runbook entry"
            assert rule["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Each panel query, with Grafana's variables filled in, parses as PromQL (promtool checks it as a
    recording rule). CI has promtool (make ops-check installs it); elsewhere this is skipped."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$__range", "1h"),
        }
        for i, expr in enumerate(dashboard_exprs().values())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
