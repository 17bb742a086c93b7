"""Prometheus scrape config, alert rules and their unit tests, and the Grafana dashboard.

Everything is checked with the real ``promtool`` (Debian package ``prometheus``).
The dashboard's PromQL is checked by writing every panel expression into a
throw-away rules file, the only offline PromQL parser at hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import DEPLOY, ROOT, assert_ok, require_tool, run

PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))

# Grafana's built-in interval variables, replaced by plausible values so that
# promtool can parse the expressions. Any other "$variable" fails the test: it
# would need a templating entry and a substitution here.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def test_scrape_config_is_valid(promtool: str) -> None:
    # Also checks that the rule files it names exist and parse.
    assert_ok(run([promtool, "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR))


def test_alert_rules_are_valid(promtool: str) -> None:
    assert_ok(run([promtool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS_DIR))


def test_alert_unit_tests_pass(promtool: str) -> None:
    assert_ok(run([promtool, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR))


def test_every_alert_has_a_unit_test() -> None:
    alerts = set(re.findall(r"^\s*- alert:\s*(\w+)", (PROMETHEUS_DIR / "alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"^\s*alertname:\s*(\w+)", (PROMETHEUS_DIR / "alerts_test.yml").read_text(), re.M))
    assert len(alerts) >= 6
    assert alerts - tested == set(), "alerts without a promtool unit test"
    assert tested - alerts == set(), "unit tests of alerts that do not exist"


def test_scrape_config_has_a_job_per_service() -> None:
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    jobs = set(re.findall(r"job_name:\s*(\S+)", text))
    assert {"newsstream-worker", "newsstream-sink", "newsstream-ingest"} <= jobs


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_expressions(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's interval variables substituted) for every target."""
    dashboard = json.loads(path.read_text())
    exprs: list[tuple[str, str]] = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            exprs.append((panel.get("title", "?"), expr))
    return exprs


def test_there_is_a_dashboard_covering_the_issue() -> None:
    assert DASHBOARDS, "no dashboard JSON under deploy/grafana/dashboards"
    titles = " | ".join(p.get("title", "") for d in DASHBOARDS for p in _panels(json.loads(d.read_text()))).lower()
    for topic in ("flow", "latency", "lag", "dead letters", "source", "duplicate", "sink health"):
        assert topic in titles, f"no panel or row about {topic!r}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_promql_is_valid(path: Path, promtool: str, tmp_path: Path) -> None:
    exprs = dashboard_expressions(path)
    assert len(exprs) >= 10
    for title, expr in exprs:
        assert "$" not in expr, f"panel {title!r} uses a Grafana variable the test does not know: {expr}"
    # One recording rule per expression; JSON is valid YAML, so no YAML writer is needed.
    rules = {
        "groups": [
            {
                "name": f"dashboard-{path.stem}",
                "rules": [{"record": f"dashboard:expr_{n}", "expr": expr} for n, (_, expr) in enumerate(exprs)],
            }
        ]
    }
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(json.dumps(rules, ensure_ascii=False, indent=1))
    result = run([promtool, "check", "rules", str(rules_file)])
    assert_ok(result)
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_uses_the_provisioned_datasource(path: Path) -> None:
    provisioned = re.search(r"uid:\s*(\S+)", (GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    assert provisioned is not None
    dashboard = json.loads(path.read_text())
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == provisioned.group(1), panel["title"]


def _catalogue() -> set[str]:
    """Every sample name the services can export, from the registry metrics.py fills."""
    from prometheus_client import REGISTRY

    import newsstream.platform.metrics  # noqa: F401  (registers the catalogue)

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def _referenced_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bnewsstream_[a-z0-9_]+", text))


def test_dashboards_and_alerts_use_only_catalogued_metrics() -> None:
    """A renamed metric must not leave a panel or an alert silently empty."""
    catalogue = _catalogue()
    used = _referenced_metrics((PROMETHEUS_DIR / "alerts.yml").read_text())
    for path in DASHBOARDS:
        used |= {m for _, expr in dashboard_expressions(path) for m in _referenced_metrics(expr)}
    assert len(used) >= 10
    assert used - catalogue == set(), "referenced metrics that no service exports"


def test_every_metric_is_documented() -> None:
    """The metrics catalogue table (docs/operations.md) names every metric."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    from prometheus_client import REGISTRY

    import newsstream.platform.metrics  # noqa: F401

    families = {f.name for f in REGISTRY.collect() if f.name.startswith("newsstream_")}
    undocumented = {
        name for name in families
        if f"`{name}`" not in docs and f"`{name}_total`" not in docs
    }
    assert undocumented == set()


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_layout_is_importable(path: Path) -> None:
    """What Grafana needs to import the JSON: a uid, unique panel ids, panels on the 24-column grid."""
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']!r} has no query"
