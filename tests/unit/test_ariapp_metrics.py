"""ARI app metrics (ariapp.metrics, ariapp.timed): what each call event and provider call counts.

The values are read back through prometheus_client's own parser from the text Prometheus scrapes.
No timing is asserted here (latency figures belong to the benchmarks); only that observations happen.
"""

from __future__ import annotations

import asyncio
import types

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ariapp import metrics
from ariapp.calls.media import CallMedia, media_codec
from ariapp.timed import TimedAnswerer, TimedRetriever, TimedSTT, TimedTTS
from contract import CallAnswered, CallEnded, CallRejected, HitlRequested, HitlSpoken, Latency


def sample(name: str, **labels: str) -> float:
    text = generate_latest(metrics.REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_call_events_count_outcomes_durations_ai_activations_and_hitl() -> None:
    published: list[tuple] = []
    publish = metrics.observed(lambda call_id, event: published.append((call_id, event)))
    before = {
        "calls": sample("aipbx_calls_total", outcome="caller_hangup"),
        "other": sample("aipbx_calls_total", outcome="other"),
        "ai": sample("aipbx_ai_activated_calls_total"),
        "duration": sample("aipbx_call_duration_seconds_count", handled_by="ai"),
        "response": sample("aipbx_ai_response_seconds_count"),
        "hitl": sample("aipbx_hitl_requests_total", reason="sensitive_topic"),
        "answered": sample("aipbx_hitl_outcomes_total", outcome="answered"),
    }
    # when one AI call's events are published
    publish("c1", CallAnswered(answered_by="ai", ai=True))
    publish("c2", CallAnswered(answered_by="PJSIP/1002", ai=False))
    publish("c1", Latency({"stt_final": 420.0, "first_rtp": 910.0}))
    publish("c1", HitlRequested(request_id="r", question="a refund?", reason="sensitive_topic"))
    publish("c1", HitlSpoken(request_id="r", text="yes"))
    publish("c1", CallEnded(cdr={"termination_reason": "caller_hangup", "ai_handled": True, "duration": 42.0}))
    publish("c3", CallEnded(cdr={"termination_reason": "+821012345678", "ai_handled": False, "duration": 1}))
    # then every event still reaches the console, and the metrics moved by exactly one each
    assert len(published) == 7
    assert sample("aipbx_calls_total", outcome="caller_hangup") == before["calls"] + 1
    assert sample("aipbx_calls_total", outcome="other") == before["other"] + 1  # never a free-text label
    assert sample("aipbx_ai_activated_calls_total") == before["ai"] + 1
    assert sample("aipbx_call_duration_seconds_count", handled_by="ai") == before["duration"] + 1
    assert sample("aipbx_ai_response_seconds_count") == before["response"] + 1
    assert sample("aipbx_hitl_requests_total", reason="sensitive_topic") == before["hitl"] + 1
    assert sample("aipbx_hitl_outcomes_total", outcome="answered") == before["answered"] + 1


def test_calls_refused_at_a_cap_are_counted_by_cap_with_a_bounded_label() -> None:
    publish = metrics.observed(lambda call_id, event: None)
    before = {limit: sample("aipbx_ai_calls_rejected_total", limit=limit) for limit in ("per_caller", "total", "other")}
    publish("c1", CallRejected(limit="per_caller", reason="limit_per_caller"))
    publish("c2", CallRejected(limit="total", reason="limit_total"))
    publish("c3", CallRejected(limit="+821012345678"))
    publish("c1", CallEnded(cdr={"termination_reason": "limit_per_caller", "ai_handled": False, "duration": 3}))
    assert {limit: sample("aipbx_ai_calls_rejected_total", limit=limit) - before[limit] for limit in before} == {
        "per_caller": 1,
        "total": 1,
        "other": 1,
    }
    assert metrics.bounded("limit_total", metrics.OUTCOMES) == "limit_total"
    assert metrics.bounded("rtp_timeout", metrics.OUTCOMES) == "rtp_timeout"


def test_a_malformed_event_figure_never_breaks_publishing() -> None:
    published = []
    publish = metrics.observed(lambda call_id, event: published.append((call_id, event)))
    publish("c1", Latency({"first_rtp": "not a number"}))  # type: ignore[dict-item]
    assert published == [("c1", Latency({"first_rtp": "not a number"}))]


def test_provider_family_comes_from_the_provider_package() -> None:
    from ariapp.conversation.answerer import ExtractiveAnswerer

    fake = type("GoogleSTT", (), {"__module__": "aipbx.providers.google.stt"})()
    assert metrics.provider_of(fake) == "google"
    assert metrics.provider_of(ExtractiveAnswerer()) == "extractive"
    assert metrics.provider_of(object()) == "other"


class _Stt:
    __module__ = "aipbx.providers.local.stt"
    sample_rate = 16000

    async def transcribe(self, pcm, language=None, hints=()):
        return "text"


class _Tts:
    __module__ = "aipbx.providers.local.tts"
    sample_rate = 22050

    async def synthesize(self, text):
        for chunk in ("a", "b"):
            yield chunk


def test_timed_providers_observe_each_call_and_keep_the_providers_attributes() -> None:
    stt, tts = TimedSTT(_Stt()), TimedTTS(_Tts())
    answerer = TimedAnswerer(types.SimpleNamespace(answer=lambda q: _Tts().synthesize(q)))
    embedder = object()
    retriever = TimedRetriever(types.SimpleNamespace(embedder=embedder, gate=None, search=_search))
    before = [
        sample("aipbx_stt_seconds_count", provider="local"),
        sample("aipbx_tts_first_audio_seconds_count", provider="local"),
        sample("aipbx_llm_first_token_seconds_count", provider="other"),
        sample("aipbx_vector_search_seconds_count"),
    ]

    async def run():
        assert await stt.transcribe(b"", "en") == "text"
        assert [c async for c in tts.synthesize("hi")] == ["a", "b"]
        assert [c async for c in answerer.answer("q")] == ["a", "b"]
        assert await retriever.search("1004", "q") == []

    asyncio.run(run())
    # what the app reads of them besides the timed calls
    assert (stt.sample_rate, tts.sample_rate, stt.busy) == (16000, 22050, False) and retriever.embedder is embedder
    after = [
        sample("aipbx_stt_seconds_count", provider="local"),
        sample("aipbx_tts_first_audio_seconds_count", provider="local"),
        sample("aipbx_llm_first_token_seconds_count", provider="other"),
        sample("aipbx_vector_search_seconds_count"),
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]  # streams: first item only


async def _search(owner, query):
    return []


def test_collector_adds_finished_and_live_calls_rtp_and_reads_the_apps_counters() -> None:
    # given one finished call's media and one live call's media
    finished, live = CallMedia(media_codec("ulaw")), CallMedia(media_codec("ulaw"))
    finished.stats.rx_packets, finished.stats.tx_packets, finished.stats.rx_malformed = 100, 120, 2
    live.stats.rx_packets, live.stats.tx_packets, live.jitter.stats.late = 5, 6, 1
    totals = metrics.MediaTotals()
    totals.add(finished)
    app = types.SimpleNamespace(
        sessions={"c2": types.SimpleNamespace(media=live)},
        tracker=types.SimpleNamespace(calls={"c2": 1}),
        connected=asyncio.Event(),
        media_totals=totals,
        clock=types.SimpleNamespace(late_ticks=3),
        ari=types.SimpleNamespace(request_results={("POST", "2xx"): 4, ("DELETE", "404"): 1}),
        events=types.SimpleNamespace(published=9, dropped=0),
    )
    registry = CollectorRegistry()
    unregister = metrics.register(app, registry)
    # when scraped
    text = generate_latest(registry).decode()
    unregister()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    # then
    assert values[("aipbx_rtp_packets_total", (("direction", "in"),))] == 105
    assert values[("aipbx_rtp_packets_total", (("direction", "out"),))] == 126
    assert values[("aipbx_rtp_packets_dropped_total", (("reason", "malformed"),))] == 2
    assert values[("aipbx_rtp_packets_dropped_total", (("reason", "late"),))] == 1
    assert values[("aipbx_active_calls", ())] == 1 and values[("aipbx_ai_sessions", ())] == 1
    assert values[("aipbx_external_media_ports_in_use", ())] == 0  # its socket is not open
    assert values[("aipbx_ari_requests_total", (("method", "POST"), ("result", "2xx")))] == 4
    assert values[("aipbx_events_published_total", ())] == 9
    assert values[("aipbx_media_clock_late_ticks_total", ())] == 3
    assert values[("aipbx_ari_connected", ())] == 0


def test_the_wait_for_the_shared_voice_is_its_own_metric_not_a_recognition_lane() -> None:
    import threading

    from aipbx.providers.local.workers import DeadlineLane

    voice_before = sample("aipbx_tts_queue_seconds_count")
    recognition_before = sample("aipbx_stt_queue_seconds_count", lane="other")
    done = threading.Event()
    DeadlineLane("piper").submit(done.set)  # the lane piper's syntheses run in

    assert done.wait(5)
    assert sample("aipbx_tts_queue_seconds_count") == voice_before + 1
    assert sample("aipbx_stt_queue_seconds_count", lane="other") == recognition_before
