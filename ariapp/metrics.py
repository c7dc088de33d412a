"""Prometheus metrics of the ARI app, served at ``/metrics`` by :mod:`ariapp.status`.

Theory of operation
    Nothing here runs in the 20 ms media tick. Three sources, all cheap:

    * **Scrape time** (:class:`AppCollector`): gauges and counters the app already keeps — calls
      tracked, AI sessions, External Media sockets, per-call RTP counters (live sessions plus the
      totals of finished ones, see :class:`MediaTotals`), ARI requests, events published/dropped,
      clock lateness — are read when Prometheus scrapes.
    * **Call events** (:func:`observed`): every event the app publishes for the console passes
      through one wrapper that updates call outcomes, durations, AI activations, calls refused at
      a cap (``call.rejected``), HITL and the AI response time (the ``latency`` event's
      ``first_rtp``: first reply audio after the end of the caller's speech).
    * **Provider calls** (:mod:`ariapp.timed`): STT, TTS first audio, LLM first token and vector
      search latency, observed around each provider call.

Recordings at rest (files left in clear, failed seals) are counted by :mod:`aipbx.sealing_sweep`, whose
metrics the ARI app and the Celery worker share.

Cardinality is bounded: no label ever carries a call id, number or text; every label value comes
from a small fixed set (:data:`OUTCOMES`, :data:`HITL_REASONS`, ...) and anything else is ``other``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aipbx.providers.local import workers
from contract import (
    CallAnswered,
    CallEnded,
    CallRejected,
    Event,
    HitlCancelled,
    HitlRequested,
    HitlSpoken,
    HitlTimeout,
    Latency,
)

if TYPE_CHECKING:
    from ariapp.app import App
    from ariapp.calls.media import CallMedia

OUTCOMES = frozenset(
    {
        "caller_hangup",
        "callee_hangup",
        "ai_hangup",
        "caller_cancelled",
        "not_answered",
        "app_restart",
        "asterisk_restart",
        "events_lost",
        "error",
        "limit_per_caller",
        "limit_total",
        "limit_capacity",
        "rtp_timeout",
    }
)
CALL_LIMITS = frozenset({"per_caller", "total", "capacity"})  # ariapp.calls.limits, ariapp.calls.admission
HITL_REASONS = frozenset({"low_confidence", "asked_for_person", "sensitive_topic"})
HITL_OUTCOMES = frozenset({"answered", "timeout", "cancelled", "away"})
PROVIDERS = frozenset({"local", "google", "openai", "gemini", "extractive"})
DROP_REASONS = ("source", "payload_type", "malformed", "late", "duplicate", "overflow")
ARI_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})

# Seconds; telephony turns: most replies land between 0.3 and 3 s.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

CALLS = Counter("aipbx_calls", "Calls finished (one CDR line each), by outcome", ["outcome"])
CALL_DURATION = Histogram(
    "aipbx_call_duration_seconds", "Call duration from start to hang-up", ["handled_by"], buckets=DURATION_BUCKETS
)
AI_ACTIVATED = Counter("aipbx_ai_activated_calls", "Calls the AI answered")
AI_REJECTED = Counter(
    "aipbx_ai_calls_rejected", "Calls the AI refused (busy message) because a cap was reached, by cap", ["limit"]
)
AI_RESPONSE = Histogram(
    "aipbx_ai_response_seconds", "First reply audio sent after the end of the caller's speech", buckets=LATENCY_BUCKETS
)
STT_LATENCY = Histogram(
    "aipbx_stt_seconds", "Speech recognition of one utterance", ["provider"], buckets=LATENCY_BUCKETS
)
TTS_LATENCY = Histogram(
    "aipbx_tts_first_audio_seconds", "Speech synthesis: request to first audio", ["provider"], buckets=LATENCY_BUCKETS
)
LLM_LATENCY = Histogram(
    "aipbx_llm_first_token_seconds", "Answer generation: request to first text", ["provider"], buckets=LATENCY_BUCKETS
)
VECTOR_SEARCH = Histogram(
    "aipbx_vector_search_seconds", "Knowledge search (embedding + vector store)", buckets=LATENCY_BUCKETS
)
RECORDINGS = Counter("aipbx_recordings_written", "Calls whose recording and transcript files were written")
RECORDINGS_FAILED = Counter(
    "aipbx_recordings_failed",
    "AI call recordings stopped early because the disk refused a write (full, failing); the calls went on",
)
STT_QUEUE = Histogram(
    "aipbx_stt_queue_seconds",
    "Time an utterance waited for the offline recogniser before it started, by lane (conversation: a caller "
    "waits for the answer; transcript: phone-to-phone calls written down at low priority)",
    ["lane"],
    buckets=LATENCY_BUCKETS,
)
STT_LANES = frozenset({"conversation", "transcript", "batch"})
TTS_QUEUE = Histogram(
    "aipbx_tts_queue_seconds",
    "Time a sentence waited for the offline voice before its synthesis started (every call shares the "
    "voice; the sentence a caller needs first goes first)",
    buckets=LATENCY_BUCKETS,
)
TTS_LANES = frozenset({"piper"})


def _observe_wait(lane: str, seconds: float) -> None:
    if lane in TTS_LANES:
        TTS_QUEUE.observe(seconds)
    else:
        STT_QUEUE.labels(bounded(lane, STT_LANES)).observe(seconds)


workers.observe_waits(_observe_wait)
HITL_REQUESTS = Counter("aipbx_hitl_requests", "Questions handed to a person, by reason", ["reason"])
HITL_RESULTS = Counter("aipbx_hitl_outcomes", "How HITL requests ended for the caller", ["outcome"])


def bounded(value: object, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``other``: a label never grows unbounded."""
    text = str(value)
    return text if text in allowed else "other"


def provider_of(obj: object) -> str:
    """Provider family from where the class lives (``aipbx.providers.google.stt`` -> ``google``)."""
    parts = type(obj).__module__.split(".")
    if parts == ["aipbx", "providers", "cache"]:  # a cache in front of a voice: the voice's family
        return provider_of(obj.inner)  # type: ignore[attr-defined]
    if len(parts) > 2 and parts[:2] == ["aipbx", "providers"]:
        return bounded(parts[2], PROVIDERS)
    return "extractive" if type(obj).__name__ == "ExtractiveAnswerer" else "other"


def recording_written() -> None:
    RECORDINGS.inc()


def recording_failed() -> None:
    RECORDINGS_FAILED.inc()


def hitl_outcome(outcome: str) -> None:
    HITL_RESULTS.labels(bounded(outcome, HITL_OUTCOMES)).inc()


_HITL_EVENT_OUTCOME: dict[type[Event], str] = {
    HitlSpoken: "answered",
    HitlTimeout: "timeout",
    HitlCancelled: "cancelled",
}


def observe_event(event: Event) -> None:
    """Update the event-driven metrics from one published call event."""
    if isinstance(event, CallEnded):
        cdr = event.cdr or {}
        CALLS.labels(bounded(cdr.get("termination_reason"), OUTCOMES)).inc()
        CALL_DURATION.labels("ai" if cdr.get("ai_handled") else "phone").observe(float(cdr.get("duration") or 0))
    elif isinstance(event, CallAnswered):
        if event.ai:
            AI_ACTIVATED.inc()
    elif isinstance(event, CallRejected):
        AI_REJECTED.labels(bounded(event.limit, CALL_LIMITS)).inc()
    elif isinstance(event, Latency):
        if "first_rtp" in event.marks:
            AI_RESPONSE.observe(float(event.marks["first_rtp"]) / 1000)
    elif isinstance(event, HitlRequested):
        HITL_REQUESTS.labels(bounded(event.reason, HITL_REASONS)).inc()
    elif type(event) in _HITL_EVENT_OUTCOME:
        hitl_outcome(_HITL_EVENT_OUTCOME[type(event)])


def observed(publish: Callable[[str, Event], None]) -> Callable[[str, Event], None]:
    """Wrap the event publisher: every event also updates the metrics (never raises into a call)."""

    def publish_and_observe(call_id: str, event: Event) -> None:
        publish(call_id, event)
        try:
            observe_event(event)
        except (TypeError, ValueError):  # a malformed figure costs a sample, not the call
            pass

    return publish_and_observe


@dataclass
class MediaTotals:
    """RTP counters of finished AI calls; live calls are added at scrape time."""

    rx: int = 0
    tx: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))

    def add(self, media: CallMedia) -> None:
        for key, value in media_counts(media).items():
            if key == "in":
                self.rx += value
            elif key == "out":
                self.tx += value
            else:
                self.dropped[key] += value


def media_counts(media: CallMedia) -> dict[str, int]:
    stats, jitter = media.stats, media.jitter.stats
    return {
        "in": stats.rx_packets,
        "out": stats.tx_packets,
        "source": stats.rx_dropped_source,
        "payload_type": stats.rx_dropped_payload_type,
        "malformed": stats.rx_malformed,
        "late": jitter.late,
        "duplicate": jitter.duplicates,
        "overflow": jitter.dropped_overflow,
    }


class AppCollector(Collector):
    """Reads the app's own counters when Prometheus scrapes."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        sessions = list(app.sessions.values())
        yield GaugeMetricFamily(
            "aipbx_active_calls", "Calls in progress (phone-to-phone and AI)", value=len(app.tracker.calls)
        )
        yield GaugeMetricFamily("aipbx_ai_sessions", "AI conversations in progress", value=len(sessions))
        yield GaugeMetricFamily(
            "aipbx_external_media_ports_in_use",
            "UDP ports held for External Media",
            value=sum(1 for s in sessions if s.media.local_port is not None),
        )
        yield GaugeMetricFamily(
            "aipbx_ari_connected", "1 while the ARI websocket is connected", value=int(app.connected.is_set())
        )

        totals = app.media_totals
        rx, tx, dropped = totals.rx, totals.tx, dict(totals.dropped)
        for session in sessions:
            counts = media_counts(session.media)
            rx, tx = rx + counts["in"], tx + counts["out"]
            for reason in DROP_REASONS:
                dropped[reason] += counts[reason]
        packets = CounterMetricFamily("aipbx_rtp_packets", "External Media RTP packets", labels=["direction"])
        packets.add_metric(["in"], rx)
        packets.add_metric(["out"], tx)
        yield packets
        drops = CounterMetricFamily(
            "aipbx_rtp_packets_dropped", "Inbound RTP packets dropped, by reason", labels=["reason"]
        )
        for reason in DROP_REASONS:
            drops.add_metric([reason], dropped[reason])
        yield drops

        ari = CounterMetricFamily(
            "aipbx_ari_requests", "ARI REST requests, by method and result", labels=["method", "result"]
        )
        merged: dict[tuple[str, str], int] = {}
        for (method, result), count in list(app.ari.request_results.items()):
            key = (bounded(method, ARI_METHODS), result)
            merged[key] = merged.get(key, 0) + count
        for key, count in sorted(merged.items()):
            ari.add_metric(list(key), count)
        yield ari
        yield CounterMetricFamily(
            "aipbx_events_published", "Call events written to the Redis stream", value=app.events.published
        )
        yield CounterMetricFamily(
            "aipbx_events_dropped", "Call events dropped while Redis was away", value=app.events.dropped
        )
        yield CounterMetricFamily(
            "aipbx_media_clock_late_ticks", "20 ms media ticks started over 5 ms late", value=app.clock.late_ticks
        )


def register(app: App, registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """Register the app's collector; returns the function that unregisters it."""
    collector = AppCollector(app)
    registry.register(collector)
    return lambda: registry.unregister(collector)
