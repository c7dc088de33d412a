"""Fault tests: the backing services fail under load and the system recovers without losing work.

Bounded (each well under 60 s) and loopback only. Shared services are never touched: Redis faults use a
private ``redis-server`` on its own port, PostgreSQL faults a TCP proxy of the test's own in front of
the shared server. (The ARI app SIGKILLed under three calls, and Asterisk restarted under them, live with
the other call tests in ``test_telephony.py``; here the app is killed under twenty, with webhooks.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings

from softphone.analysis import speech_seconds
from stack.config import REPO
from stack.instance import free_port
from tests.integration.audio_checks import until
from tests.integration.test_telephony import cdr_baseline, new_cdr, quiet_asterisk


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- Redis restarted with queued Celery tasks --------------------------------------------------------
class PrivateRedis:
    """``redis-server`` on its own port and directory, with an fsync-always append-only file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ping, 10, "the private redis to answer")

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self, db: int = 15) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=2, socket_connect_timeout=1)

    def stop(self) -> None:
        """SIGTERM: Redis finishes the append-only file and exits (a clean shutdown)."""
        assert self.proc is not None
        stop_process(self.proc)
        assert self.proc.returncode == 0, self.proc.returncode


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        stop_process(server.proc)


@contextlib.contextmanager
def celery_worker(server: PrivateRedis, queue: str, log_path: Path) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        # test settings put the broker and results in database 15 of this Redis
        "AIPBX_REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        "AIPBX_CELERY_KEY_PREFIX": "",
        "AIPBX_WORKER_METRICS_PORT": "0",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "webconsole",
        "worker",
        "--pool=solo",
        "-Q",
        queue,
        "-n",
        f"faults-{uuid.uuid4().hex[:8]}@localhost",
        "--loglevel=info",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def succeeded(server: PrivateRedis, task_ids: list[str]) -> int:
    try:
        metas = server.client().mget([f"celery-task-meta-{task_id}" for task_id in task_ids])
    except redis.RedisError:
        return 0
    return sum(1 for meta in metas if meta and json.loads(meta)["status"] == "SUCCESS")


def test_tasks_queued_across_a_redis_restart_all_complete(private_redis: PrivateRedis, tmp_path: Path) -> None:
    # given N tasks queued while no worker runs
    n = 20
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    producer = Celery(
        "faults",
        set_as_current=False,
        broker=f"redis://127.0.0.1:{private_redis.port}/15",
        backend=f"redis://127.0.0.1:{private_redis.port}/15",
    )
    first = [producer.send_task("webconsole.core.tasks.ping_task", queue=queue).id for _ in range(n)]
    assert private_redis.client().llen(queue) == n

    # when Redis is stopped and started again
    private_redis.stop()
    private_redis.start()

    # then the tasks survived, and a worker completes every one
    assert private_redis.client().llen(queue) == n
    log_path = tmp_path / "worker.log"
    with celery_worker(private_redis, queue, log_path):
        wait_for(lambda: succeeded(private_redis, first) == n, 30, f"{n} tasks to succeed\n{log_path.read_text()}")

        # and when Redis restarts under a running worker, tasks queued afterwards complete too
        private_redis.stop()
        time.sleep(1.0)
        private_redis.start()
        producer = Celery(
            "faults2",
            set_as_current=False,
            broker=f"redis://127.0.0.1:{private_redis.port}/15",
            backend=f"redis://127.0.0.1:{private_redis.port}/15",
        )
        second = [producer.send_task("webconsole.core.tasks.ping_task", queue=queue).id for _ in range(5)]
        wait_for(
            lambda: succeeded(private_redis, second) == 5,
            30,
            f"tasks after the restart to succeed\n{log_path.read_text()}",
        )
    assert succeeded(private_redis, first) == n  # results persisted across the second restart as well


# --- PostgreSQL unavailable while a call is in progress ----------------------------------------------
class CuttableProxy:
    """A TCP proxy to PostgreSQL; :meth:`cut` drops every connection and refuses new ones until :meth:`restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.cut_now = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cut_now = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut_now = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


def start_consumer(pbx, stream: str, db_url: str, group: str, log_path: Path) -> subprocess.Popen:
    """``manage.py consume_events`` for the test instance's stream, in a group of its own, on ``db_url``."""
    env = {
        **os.environ,
        **pbx.cfg.process_env(),
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        "AIPBX_DATABASE_URL": db_url,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "consume_events", "--stream", stream, "--group", group],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def migrated(db_url: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webconsole.settings.test", "AIPBX_DATABASE_URL": db_url}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def stored_event_ids(db_url: str, call_id: str) -> list[str]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT e.event_id FROM calls_callevent e JOIN calls_call c ON c.id = e.call_id "
            "WHERE c.call_id = %s ORDER BY e.event_id",
            (call_id,),
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.asterisk
async def test_postgres_outage_during_a_call_drops_nothing(pbx, ariapp, phones, tmp_path: Path) -> None:
    """A console of its own (database and consumer group): the suite's other consumers of this stream
    must not store the events this test expects its consumer to hold through the outage."""
    from ariapp.events import stream_name
    from bench.db import throwaway_database
    from webconsole.settings.env import database_url, parse_database_url

    with throwaway_database("aipbx_faults") as db_url:
        await asyncio.to_thread(migrated, db_url)
        db = parse_database_url(db_url)
        # given the event consumer talking to PostgreSQL through a proxy we can cut
        proxy = CuttableProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
        await proxy.start()
        stream = stream_name(pbx.cfg.name)
        client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)
        group = f"faults-{uuid.uuid4().hex[:8]}"
        client.xgroup_create(stream, group, id="$", mkstream=True)  # from now: earlier tests' calls are not ours
        via_proxy = database_url({**db, "HOST": "127.0.0.1", "PORT": str(proxy.port)})
        log_path = tmp_path / "consume_events.log"
        consumer = start_consumer(pbx, stream, via_proxy, group, log_path)
        try:
            before = await cdr_baseline(pbx, ariapp)
            async with phones("1001") as caller:
                # when a call is in progress and PostgreSQL becomes unreachable for 4 s
                call = await caller.call("1004", timeout=10)
                await until(lambda: speech_seconds(call.received_audio()) > 0.3, 10, "the greeting to start")
                proxy.cut()
                # an event certainly arrives during the outage (the call's own may come before or after)
                probe = {
                    "event_id": uuid.uuid4().hex,
                    "type": "state",
                    "call_id": f"outage-probe-{uuid.uuid4().hex[:8]}",
                    "ts": f"{time.time():.3f}",
                    "data": '{"state": "listening"}',
                }
                client.xadd(stream, probe)
                await asyncio.sleep(4.0)
                heard_during_outage = speech_seconds(call.received_audio())
                proxy.restore()
                await asyncio.sleep(1.0)
                # then the call was not dropped: it is up and the AI kept talking
                assert not call.ended.is_set()
                assert heard_during_outage > 1.0
                await call.hangup()
            await quiet_asterisk(pbx)
            (line,) = new_cdr(pbx, before)
            assert line["termination_reason"] != "app_restart"

            # and every event of the call is stored exactly once, once PostgreSQL is back
            entries = [e for _, e in client.xrange(stream) if e.get("call_id") == line["call_id"]]
            assert entries, "the ARI app published no events for the call"
            ids = sorted(e["event_id"] for e in entries)
            with contextlib.suppress(AssertionError):
                await asyncio.to_thread(
                    wait_for,
                    lambda: stored_event_ids(db_url, line["call_id"]) == ids,
                    25,
                    "every event to be stored",
                    0.2,
                )
            assert await asyncio.to_thread(stored_event_ids, db_url, line["call_id"]) == ids  # once each, none missing
            assert await asyncio.to_thread(stored_event_ids, db_url, probe["call_id"]) == [probe["event_id"]]
            assert "event ingestion paused" in log_path.read_text()  # the consumer noticed and waited
        finally:
            stop_process(consumer)
            await proxy.stop()
            client.xgroup_destroy(stream, group)
            client.close()


# --- the ARI app killed during live calls: webhooks exactly once -------------------------------------
def manage(db_url: str, *argv: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webconsole.settings.test", "AIPBX_DATABASE_URL": db_url}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def ended_calls(db_url: str, call_ids: list[str]) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM calls_call WHERE call_id = ANY(%s) AND state = 'ended'", (call_ids,)
        ).fetchone()[0]


KILLED_CALLS = 20  # AI calls up when the ARI app is killed


@pytest.fixture
def uncapped_app(pbx, ariapp):
    """The ARI app without the per-caller AI call cap (the calls come from three phones), in place of
    the session's."""
    from stack.instance import AppProcess

    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_MAX_AI_CALLS_PER_CALLER": "0"})
    try:
        app.start()
        yield app
    finally:
        app.stop()
        ariapp.start()


@pytest.mark.asterisk
async def test_ari_app_killed_during_live_calls_each_calls_end_is_delivered_once_by_webhook(
    pbx, uncapped_app, phones, tmp_path: Path
) -> None:
    """SIGKILL during twenty AI calls: after the restart every call is hung up and cleaned up, and
    each call's end reaches the webhook exactly once.

    A console of its own (database, consumer group) ingests the events; a webhook endpoint on
    loopback receives what the sweep sends. (The same with three calls and no console:
    test_telephony's restart test.)
    """
    ariapp, n = uncapped_app, KILLED_CALLS
    from ariapp.events import stream_name
    from bench.db import throwaway_database
    from tests.fakes.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    await receiver.start()
    with throwaway_database("aipbx_faults") as db_url:
        await asyncio.to_thread(migrated, db_url)
        await asyncio.to_thread(
            manage,
            db_url,
            "shell",
            "-c",
            "from webconsole.webhooks.models import WebhookEndpoint; "
            f"WebhookEndpoint.objects.create(name='ops', url='{receiver.url}')",
        )
        stream = stream_name(pbx.cfg.name)
        client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)
        group = f"faults-{uuid.uuid4().hex[:8]}"
        client.xgroup_create(stream, group, id="$", mkstream=True)
        consumer = start_consumer(pbx, stream, db_url, group, tmp_path / "consume_events.log")
        try:
            before = await cdr_baseline(pbx, ariapp)
            async with phones("1001") as a, phones("1002") as b, phones("1003") as c:
                # given twenty live AI calls (1004 is not registered: the AI answers at once)
                calls = await asyncio.gather(*((a, b, c)[i % 3].call("1004", timeout=20) for i in range(n)))
                await until(
                    lambda: all(speech_seconds(call.received_audio()) > 0.5 for call in calls),
                    20,
                    "every greeting to start",
                )
                # when the ARI app dies (SIGKILL) and comes back
                ariapp.kill()
                await asyncio.to_thread(ariapp.start)
                # then every phone is hung up, and Asterisk holds nothing of the dead app's
                await asyncio.wait_for(asyncio.gather(*(call.ended.wait() for call in calls)), 30)
            await quiet_asterisk(pbx, 20)
            lines = await asyncio.to_thread(new_cdr, pbx, before, n, 30.0)
            assert sorted(line["termination_reason"] for line in lines) == ["app_restart"] * n
            ids = sorted(line["call_id"] for line in lines)
            assert len(set(ids)) == n  # one line per call
            status = ariapp.status()
            assert status["ai_sessions"] == 0 and status["media_sockets"] == 0 and status["active_calls"] == 0
            await asyncio.to_thread(wait_for, lambda: ended_calls(db_url, ids) == n, 30, "the calls to be stored")
            # when the sweep runs (twice: a second run must send nothing more)
            await asyncio.to_thread(manage, db_url, "deliver_webhooks", "--once")
            await asyncio.to_thread(manage, db_url, "deliver_webhooks", "--once")
        finally:
            stop_process(consumer)
            client.xgroup_destroy(stream, group)
            client.close()
            await receiver.stop()
    # then each call's end was reported exactly once (as call_failed: the calls were cut by the crash),
    # each delivery with its own idempotency key
    bodies = [json.loads(body) for body in receiver.bodies]
    ends = sorted(
        (body["data"]["call_id"], body["event"]) for body in bodies if body["event"] in ("call_ended", "call_failed")
    )
    assert ends == [(call_id, "call_failed") for call_id in ids], [
        (b["event"], b["data"].get("call_id")) for b in bodies
    ]
    keys = [request.headers["x-aipbx-delivery"] for request in receiver.requests]
    assert len(keys) == len(set(keys)) == len(bodies)
    assert len(pbx.cdr_lines()) == before + n  # and one CDR line each, still


# --- the disk filling up while an AI call is recorded ------------------------------------------------
@contextlib.contextmanager
def small_disk(path: Path, size: str = "8m") -> Iterator[None]:
    """A tmpfs of its own mounted on ``path`` (same owner and mode; what was there is hidden meanwhile)."""
    st = path.stat()
    subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size},mode={st.st_mode & 0o7777:o},uid={st.st_uid},gid={st.st_gid}",
            "aipbx-test-full",
            str(path),
        ],
        check=True,
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # lazy: a file still open must not keep it


def fill(path: Path) -> None:
    """Write ``path`` until the disk says it is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(chunk)
        with contextlib.suppress(OSError):
            while True:  # the last pages
                handle.write(b"\0" * 512)


def truthful_wav_frames(path: Path) -> int:
    """The samples of a 16-bit mono WAV, after checking its header describes exactly the file."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data", path
    riff, size = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 40)[0]
    assert (riff, size) == (len(data) - 8, len(data) - 44), (path, riff, size, len(data))
    return size // 2


def recorded_audio(recordings: Path) -> bool:
    """Whether a call's caller track in ``recordings`` holds audio past its WAV header."""
    for path in recordings.glob("*/caller.wav"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > 44:
                return True
    return False


@pytest.mark.asterisk
async def test_disk_full_while_recording_the_call_goes_on_and_the_loss_is_reported(pbx, ariapp, phones) -> None:
    from tests.integration.test_call_guards import metric

    before = await cdr_baseline(pbx, ariapp)
    failed = metric(ariapp, "aipbx_recordings_failed_total")
    with small_disk(pbx.cfg.recordings_dir):
        async with phones("1001") as caller:
            # given an AI call being recorded (to a disk of its own: the CDR goes elsewhere)
            call = await caller.call("1004", timeout=10)
            await until(lambda: speech_seconds(call.received_audio()) > 0.5, 10, "the greeting to start")
            # the recorder writes a second at a time: its first second is on the disk (the greeting can
            # reach the phone before it, and a disk full before any write leaves no file to check)
            await until(lambda: recorded_audio(pbx.cfg.recordings_dir), 10, "the recording's first second on disk")
            # when the disk fills up
            await asyncio.to_thread(fill, pbx.cfg.recordings_dir / "filler")
            heard = speech_seconds(call.received_audio())
            # then the call goes on: the caller keeps hearing the AI (the greeting lasts seconds more)
            await until(lambda: speech_seconds(call.received_audio()) > heard + 2.0, 15, "the AI to keep talking")
            assert not call.ended.is_set()
            await call.hangup()
        (line,) = await asyncio.to_thread(new_cdr, pbx, before)
        # and the loss is reported: in the call's CDR line, the metrics and the log
        assert line["termination_reason"] == "caller_hangup"
        assert "No space left on device" in (line["recording_error"] or ""), line
        assert metric(ariapp, "aipbx_recordings_failed_total") == failed + 1
        assert "recording of" in ariapp.log_tail(200) and "the call goes on" in ariapp.log_tail(200)
        # and nothing corrupt is left: each WAV's header tells exactly what it holds, the tracks stay aligned,
        # no half-written metadata (the disk is still full: the files stay in clear for the seal sweep)
        folder = pbx.cfg.recordings_dir / line["call_id"]
        frames = {name: truthful_wav_frames(folder / name) for name in ("caller.wav", "callee.wav", "mixed.wav")}
        assert len(set(frames.values())) == 1 and 0 < frames["mixed.wav"] / 8000 <= heard + 1.0, frames
        if (folder / "metadata.json").exists():
            json.loads((folder / "metadata.json").read_text())
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    await quiet_asterisk(pbx)
