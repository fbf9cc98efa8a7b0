"""deploy/: the Prometheus alert rules and the Grafana dashboard. promtool (Debian's
prometheus package, installed when missing) checks the rules, runs their unit tests and
parses every dashboard query; the parser tests below run everywhere; and every metric
either of them uses is one Hookway exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookway.metrics import exposition, registry
from hookway.store.gauges import DestinationGauges
from tests.debpkg import tool
from tests.metricstext import names, parse

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hookway-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "hookway-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hookway-dashboard.json"
METRIC = re.compile(r"\bhookway_[a-z_]+")
ALERTS = {
    "HookwayDeliveriesDead",
    "HookwayOldestPendingTooOld",
    "HookwayDestinationFailing",
    "HookwayDatabaseUnreadable",
    "HookwayEventLoopBlocked",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = tool("promtool", "prometheus")
    if path is None:
        pytest.skip("promtool is not installed and Debian's prometheus package can't be here")
    return path


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def exported_names() -> set[str]:
    """Every sample name Hookway's /metrics can carry: each metric given a value."""
    registry.webhook_received("names-check", 202, 0.01)
    registry.flush()  # ingest's counts reach prometheus-client only when flushed
    for outcome in ("succeeded", "dead", "retry"):
        registry.attempt_recorded("names-check", 0.1, outcome)
    registry.loop_lagged(0.001)
    gauges = DestinationGauges("names-check", True, False, 0, 1, 1, 5.0, circuit="open")
    return names(parse(exposition.render([gauges]).decode()))


def test_the_rules_are_the_alerts_the_docs_describe():
    found = rules()
    assert {rule["alert"] for rule in found} == ALERTS
    for rule in found:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert METRIC.search(rule["expr"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]


def test_the_dashboard_is_grafana_json_with_a_query_per_panel():
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] == "hookway"
    assert [v["name"] for v in document["templating"]["list"]] == ["datasource"]
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), panel["title"]


def test_every_metric_the_rules_and_dashboard_use_is_exported():
    exported = exported_names()
    used = set(METRIC.findall(RULES.read_text()))
    used |= set(METRIC.findall(RULE_TESTS.read_text()))
    for query in dashboard_queries():
        used |= set(METRIC.findall(query))
    assert used, "no metric found: the pattern is wrong"
    assert used - exported == set()
    # And the other way round, the dashboard shows each kind of thing Hookway counts.
    for family in (
        "hookway_webhooks_received_total",
        "hookway_ingest_duration_seconds_bucket",
        "hookway_deliveries_total",
        "hookway_retries_scheduled_total",
        "hookway_delivery_attempt_duration_seconds_bucket",
        "hookway_deliveries_pending",
        "hookway_deliveries_dead",
        "hookway_oldest_pending_delivery_age_seconds",
        "hookway_event_loop_lag_seconds_bucket",
        "hookway_destination_paused",
    ):
        assert any(family in q for q in dashboard_queries()), family


def test_promtool_accepts_the_rules(promtool: str):
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_rules_fire_when_they_should_and_not_otherwise(promtool: str):
    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_every_dashboard_query(promtool: str, tmp_path: Path):
    # Grafana's $__rate_interval becomes a duration Prometheus parses.
    records = [
        {"record": f"hookway:dashboard_query_{i}", "expr": q.replace("$__rate_interval", "5m")}
        for i, q in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
