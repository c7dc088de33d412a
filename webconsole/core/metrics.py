"""Prometheus metrics of the web console, read from PostgreSQL when Prometheus scrapes.

``/metrics`` (see :func:`webconsole.core.views.metrics`) needs no login but ``Authorization: Bearer
<AIPBX_METRICS_TOKEN>`` (Prometheus: ``authorization: {credentials_file: ...}``); without a token
configured it answers 403. Keep it off the public proxy all the same (allow the Prometheus host only).

Every label value is one of a model's fixed ``choices``, so cardinality stays bounded; the counts are
a few ``GROUP BY`` queries on indexed status columns. Webhook deliveries are reported only when the
``webconsole.webhooks`` app is installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.db.models import Count
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


def _by_status(model, field: str, choices: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(choices, 0)
    for row in model.objects.values(field).annotate(n=Count("pk")).order_by():
        key = row[field] if row[field] in counts else "other"
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


def _gauge(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value or "none"], count)
    return family


class ConsoleCollector(Collector):
    def collect(self):
        from knowledge.models import ExtractionRun, KnowledgeItem, Status
        from webconsole.calls.models import Call, CallState
        from webconsole.hitl.models import HitlRequest, RequestStatus

        yield _gauge(
            "aipbx_knowledge_documents",
            "Knowledge items, by review status",
            "status",
            _by_status(KnowledgeItem, "status", Status.values),
        )
        yield _gauge(
            "aipbx_knowledge_extractions",
            "Post-call knowledge extractions, by result",
            "result",
            _by_status(ExtractionRun, "status", ExtractionRun.RunStatus.values),
        )
        yield _gauge(
            "aipbx_console_calls",
            "Calls stored by the console, by state",
            "state",
            _by_status(Call, "state", CallState.values),
        )
        hitl = _by_status(HitlRequest, "status", RequestStatus.values)
        yield _gauge("aipbx_console_hitl_requests", "HITL requests, by status", "status", hitl)
        yield GaugeMetricFamily(
            "aipbx_console_hitl_open",
            "HITL requests waiting for or claimed by an operator",
            value=hitl[RequestStatus.WAITING] + hitl[RequestStatus.CLAIMED],
        )
        if apps.is_installed("webconsole.webhooks"):  # built in parallel: report it once it is there
            from webconsole.webhooks.models import Delivery, DeliveryStatus

            yield _gauge(
                "aipbx_webhook_deliveries",
                "Webhook deliveries, by status (dead = gave up)",
                "status",
                _by_status(Delivery, "status", DeliveryStatus.values),
            )


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ConsoleCollector())
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes ...


def render() -> bytes:
    """The Prometheus text exposition of every console metric (runs the queries)."""
    return generate_latest(REGISTRY)
