"""Metrics, structured logs and readiness of a real ARI app process during real calls.

The ARI app runs as its own process with ``AIPBX_LOG_JSON=1``; a real softphone calls the AI through
the real Asterisk. What an operator relies on is checked from the outside: ``/metrics`` parsed with
prometheus_client's own parser, the JSON lines the process wrote, and ``/ready`` while Redis or ARI
is away and after it returns.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ariapp import metrics
from softphone.analysis import silent_tail, speech_seconds
from stack.instance import AppProcess, free_port
from tests.integration.audio_checks import speech, until, until_greeting
from tests.integration.test_telephony import cdr_baseline, new_cdr, quiet_asterisk

pytestmark = [pytest.mark.asterisk]

# Every label of the ARI app's metrics and the only values it may take (no call ids, no numbers).
ALLOWED_LABELS = {
    "outcome": metrics.OUTCOMES | metrics.HITL_OUTCOMES | {"other"},
    "handled_by": {"ai", "phone"},
    "provider": metrics.PROVIDERS | {"other"},
    "reason": set(metrics.DROP_REASONS) | metrics.HITL_REASONS | {"other"},
    "direction": {"in", "out"},
    "method": metrics.ARI_METHODS | {"other"},
    "result": {"2xx", "3xx", "4xx", "404", "5xx", "unavailable"},
    "lane": metrics.STT_LANES | {"other"},
    "le": None,  # histogram bucket bounds: fixed by the code
}


def scrape(app: AppProcess) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(app.status_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def json_app(pbx, ariapp):
    """The instance's ARI app, restarted with JSON logs into a file of its own."""
    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_LOG_JSON": "1"})
    app.log_path = pbx.cfg.log_dir / "ariapp-json.log"
    app.start()
    yield app
    app.stop()
    ariapp.start()


async def test_a_real_ai_call_moves_the_metrics_and_every_line_carries_the_call_id(pbx, json_app, phones):
    before_cdr = await cdr_baseline(pbx, json_app)
    before = scrape(json_app)
    offset = json_app.log_path.stat().st_size
    # given a caller who reaches the AI, hears the greeting and asks a question
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until_greeting(call)
        await until(lambda: silent_tail(call.received_audio(), 1.0), 15, "end of the greeting")
        said_at = len(call.received_audio()) / 8000
        await call.play_and_wait(await speech("The printer on the second floor is broken."))
        await until(lambda: speech_seconds(call.received_audio()[int(said_at * 8000) :]) > 1.0, 25, "a reply")
        during = scrape(json_app)
        await call.hangup()
    await quiet_asterisk(pbx)
    (line,) = new_cdr(pbx, before_cdr)
    await until(lambda: json_app.status()["calls_finishing"] == 0, 10, "the call to be written")
    after = scrape(json_app)

    # then the call shows in the metrics while it lasts ...
    assert value(during, "aipbx_active_calls") == 1
    assert value(during, "aipbx_external_media_ports_in_use") == 1
    # ... and is counted once it ended
    assert value(after, "aipbx_active_calls") == 0 and value(after, "aipbx_external_media_ports_in_use") == 0
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert delta[("aipbx_calls_total", (("outcome", "caller_hangup"),))] == 1
    assert delta[("aipbx_ai_activated_calls_total", ())] == 1
    assert delta[("aipbx_call_duration_seconds_count", (("handled_by", "ai"),))] == 1
    assert delta[("aipbx_recordings_written_total", ())] == 1
    # 20 ms packets both ways for a call of several seconds
    assert delta[("aipbx_rtp_packets_total", (("direction", "in"),))] > 150
    assert delta[("aipbx_rtp_packets_total", (("direction", "out"),))] > 150
    assert delta[("aipbx_ari_requests_total", (("method", "POST"), ("result", "2xx")))] >= 4
    # no knowledge for this question: the AI asks a person, and nobody is at the console here
    assert delta[("aipbx_hitl_requests_total", (("reason", "low_confidence"),))] == 1
    assert delta[("aipbx_hitl_outcomes_total", (("outcome", "away"),))] == 1
    assert delta[("aipbx_vector_search_seconds_count", ())] >= 1
    assert delta[("aipbx_stt_seconds_count", (("provider", "local"),))] >= 1
    assert delta[("aipbx_stt_queue_seconds_count", (("lane", "conversation"),))] >= 1  # how long it waited
    assert delta[("aipbx_tts_first_audio_seconds_count", (("provider", "local"),))] >= 1
    assert delta[("aipbx_events_published_total", ())] > 3
    # no label carries a call id, a number or free text
    for name, labels in after:
        if not name.startswith("aipbx_"):
            continue
        for label, label_value in labels:
            assert label in ALLOWED_LABELS, (name, label)
            assert ALLOWED_LABELS[label] is None or label_value in ALLOWED_LABELS[label], (name, label, label_value)
            assert line["call_id"] not in label_value

    # and every line the process logged during the call is JSON with the call id, without secrets
    with json_app.log_path.open("rb") as log:
        log.seek(offset)
        raw = log.read().decode()
    records = [json.loads(text) for text in raw.splitlines() if text.strip()]
    assert records, "the call logged nothing"
    assert [r for r in records if r.get("call_id") != line["call_id"]] == []
    assert any(r["event"].startswith(f"call {line['call_id']} ended") for r in records)
    assert pbx.cfg.ari_password not in raw
    # the extensions here are 4-digit numbers (nothing to mask); longer numbers: tests/unit/test_ariapp_logs.py
    events = json.dumps([r["event"] for r in records]).replace(line["call_id"], "")
    events = re.sub(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<uuid>", events)  # a UUID is no number
    assert not re.search(r"(?<![\w.-])\+?\d(?:[ -]?\d){6,}(?![\w.])", events)  # no phone-like number


class TcpProxy:
    """A loopback TCP relay to Asterisk's HTTP port that a test can cut and restore (ARI unreachable)."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = port or free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._server is not None:
            # shutdown first: close() alone leaves a listener blocked in accept() on Linux
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._conns.clear()


def ready_body(app: AppProcess) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(app.status_url + "/ready", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def private_redis(port: int) -> subprocess.Popen:
    """A Redis of this test's own (never the shared one on 6379), without persistence."""
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_ready_follows_redis_and_ari_going_away_and_coming_back(pbx, tmp_path):
    # given an ARI app of its own (own ARI app name, status port, CDR state) using a private Redis
    # and reaching ARI through a relay the test can cut
    redis_port = free_port()
    redis = private_redis(redis_port)
    proxy = TcpProxy(pbx.cfg.http_port)
    proxy.start()
    cfg = dataclasses.replace(
        pbx.cfg,
        status_port=free_port(),
        ari_app=f"{pbx.cfg.ari_app}-probe",
        extra_env={
            **pbx.cfg.extra_env,
            "AIPBX_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIPBX_ARI_URL": f"http://127.0.0.1:{proxy.port}",
            "AIPBX_CDR_DIR": str(tmp_path / "cdr"),
            "AIPBX_STATE_DIR": str(tmp_path / "state"),
            "AIPBX_RECORDINGS_DIR": str(tmp_path / "rec"),
            "AIPBX_KNOWLEDGE_STORE": "none",
        },
    )
    app = AppProcess(cfg)
    app.log_path = tmp_path / "ariapp.log"
    try:
        app.start()
        assert ready_body(app) == (200, {"status": "ok", "ari": True, "models": True, "redis": True})

        # when Redis stops, /ready turns 503 naming Redis; when it is back, 200 again within seconds
        redis.terminate()
        redis.wait(10)
        status, body = wait_for(lambda: (r := ready_body(app))[0] == 503 and r, 5, "not ready without Redis")
        assert body["redis"] is False and body["ari"] is True
        redis = private_redis(redis_port)
        started = time.monotonic()
        wait_for(lambda: ready_body(app)[0] == 200, 10, "ready again after Redis returned")
        assert time.monotonic() - started < 5

        # when ARI becomes unreachable, /ready turns 503 naming ARI; back within seconds of its return
        proxy.stop()
        status, body = wait_for(lambda: (r := ready_body(app))[0] == 503 and r, 10, "not ready without ARI")
        assert body["ari"] is False and body["redis"] is True
        time.sleep(1.0)
        proxy = TcpProxy(pbx.cfg.http_port, port=proxy.port)
        proxy.start()
        started = time.monotonic()
        wait_for(lambda: ready_body(app)[0] == 200, 15, "ready again after ARI returned")
        assert time.monotonic() - started < 8  # the reconnect backoff is capped at 5 s
    finally:
        app.stop()
        proxy.stop()
        redis.terminate()
        redis.wait(10)
