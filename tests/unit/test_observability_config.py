"""The Grafana dashboard and the Prometheus config name only metrics and ports the processes serve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["ariapp/metrics.py", "webconsole/core/metrics.py", "webconsole/core/worker_metrics.py"]


def test_every_dashboard_metric_is_defined_by_a_process() -> None:
    defined = set()
    for source in SOURCES:
        defined |= set(re.findall(r'"(aipbx_\w+)"', (REPO / source).read_text()))
    dashboard = json.loads((REPO / "docker/grafana/aipbx-dashboard.json").read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"aipbx_\w+", target["expr"])
    }
    assert used and used <= defined, used - defined


def test_prometheus_scrapes_the_three_processes_on_their_default_ports() -> None:
    config = yaml.safe_load((REPO / "docker/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "aipbx-ariapp": ["127.0.0.1:8090"],
        "aipbx-web": ["127.0.0.1:8000"],
        "aipbx-worker": ["127.0.0.1:9101", "127.0.0.1:9102"],
    }
