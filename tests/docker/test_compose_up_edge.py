"""The Kamailio edge in production compose: ``docker compose --profile edge up`` with ``AIPBX_NODE=1``.

The edge container (docker/edge/Dockerfile: Debian 12's Kamailio, rendered by the code ``make up NODES=2``
uses) takes the phones' SIP port; compose's Asterisk is node 1 behind it, on 127.0.0.2. A phone registers
at the edge (its registration lands in the edge's own database in compose's PostgreSQL, made by the
edge's start), calls an extension nobody registered, and hears the AI's greeting from the node.

It runs after test_compose_up.py (file order) and reuses what that test built: its ``build`` finds every
layer of the app and Asterisk images in BuildKit's cache, and builds the edge's image once. Only the
services the call needs are started (no console, no workers). Timings are printed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

from aipbx.directory import load_directory
from stack.config import read_env_file
from stack.kamailio import parse_dispatcher_list
from tests.docker.test_compose_up import Compose, clean_copy, free_port, require_docker, until

pytestmark = [pytest.mark.slow]

CALLER, NOBODY = "1001", "1004"  # 1004: nobody registers it, so the node's AI answers at once
NODE = "127.0.0.2"  # node 1 of the edge (stack.cluster.node_address)
SERVICES = ("edge", "asterisk", "ariapp")  # and what they depend on: setup, postgres, redis, chroma
INSTANCE = "edgetest"


def edge_sip_port() -> int:
    """A UDP port free on 127.0.0.1 (the edge) and on the node's 127.0.0.2 (its Asterisk keeps the
    deployment's SIP port), whose + 2 is a free TCP port (the edge's registration lookup)."""
    for _ in range(50):
        port = random.randrange(21000, 29000)
        try:
            for address, kind in (("127.0.0.1", socket.SOCK_DGRAM), (NODE, socket.SOCK_DGRAM)):
                with socket.socket(socket.AF_INET, kind) as sock:
                    sock.bind((address, port))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", port + 2))
        except OSError:
            continue
        return port
    raise AssertionError("no free SIP port for the edge")


async def ai_call_through_the_edge(sip_port: int, password: str, registered) -> dict:
    """1001 registers at the edge (``registered()``: who the edge's usrloc holds then) and calls 1004;
    returns what it saw and heard."""
    from softphone import Phone
    from softphone.analysis import silent_tail, speech_seconds
    from tests.integration.audio_checks import transcribe
    from tests.integration.audio_checks import until as until_heard

    phone = Phone(ext=CALLER, password=password, server=("127.0.0.1", sip_port), local_ip="127.0.0.1")
    await phone.start()
    try:
        await phone.register(expires=120)
        usrloc = await asyncio.to_thread(registered)
        started = time.monotonic()
        call = await phone.call(NOBODY, timeout=30)
        setup_s = time.monotonic() - started
        await until_heard(lambda: speech_seconds(call.received_audio()) > 2.5, 30, "the greeting")
        await until_heard(lambda: silent_tail(call.received_audio(), 1.0), 30, "the end of the greeting")
        media = call.remote_media.address if call.remote_media else None
        heard = call.received_audio()
        await call.hangup()
        await phone.unregister()
    finally:
        await phone.close()
    return {"setup_s": round(setup_s, 2), "media": media, "usrloc": usrloc, "greeting": await transcribe(heard)}


def test_compose_edge_profile_registers_phones_at_kamailio_and_the_node_answers_with_the_ai(tmp_path: Path) -> None:
    test_started = time.monotonic()
    require_docker()
    # given a clean copy whose .env puts this host's Asterisk behind the edge, on ports nothing else uses
    root = clean_copy(tmp_path / "aipbx")
    rtp_start = random.randrange(20000, 29000, 2)
    sip_port = edge_sip_port()
    settings = {
        "AIPBX_INSTANCE": INSTANCE,
        "AIPBX_VERSION": "test",
        "AIPBX_SIP_BIND": "127.0.0.1",
        "AIPBX_NODE": "1",
        "AIPBX_SIP_PORT": sip_port,
        "AIPBX_SIP_TLS_PORT": free_port(),
        "AIPBX_HTTP_PORT": free_port(),
        "AIPBX_STATUS_PORT": free_port(),
        "AIPBX_CHROMA_PORT": free_port(),
        "AIPBX_POSTGRES_PORT": free_port(),
        "AIPBX_REDIS_PORT": free_port(),
        "AIPBX_RTP_START": rtp_start,
        "AIPBX_RTP_END": rtp_start + 200,
    }
    (root / ".env").write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    compose = Compose(root, f"aipbxedge{os.getpid()}")
    ctl = f"unix:/run/aipbx/edge-{INSTANCE}/kamailio-ctl.sock"
    heard: dict = {}
    try:
        compose.timed("build", "--profile", "edge", "build", *SERVICES, timeout=3600)
        # when the edge profile comes up
        compose.timed("up", "--profile", "edge", "up", "--detach", "--wait", *SERVICES, timeout=900)
        states = compose.states()
        for service in (*SERVICES, "postgres"):
            assert states.get(service, "").startswith("running healthy"), states
        # then Kamailio runs as its own user ...
        assert compose("exec", "-T", "edge", "stat", "-c", "%U", "/proc/1").stdout.decode().split() == ["kamailio"]
        # and cannot read the secrets its start used (the database owner's password among them)
        as_kamailio = compose("exec", "-T", "--user", "kamailio", "edge", "ls", "/run/secrets", check=False)
        assert as_kamailio.returncode != 0 and b"Permission denied" in as_kamailio.stderr, as_kamailio
        # and the edge probes node 1 (this host's Asterisk) until it answers
        until(
            lambda: (
                parse_dispatcher_list(
                    compose("exec", "-T", "edge", "kamcmd", "-s", ctl, "dispatcher.list").stdout.decode()
                )
                .get((NODE, sip_port), "")
                .startswith("A")
            ),
            20,
            "node 1 active at the edge",
        )

        # when a phone registers at the edge and calls an extension nobody registered
        password = read_env_file(root / "secrets" / "sip_passwords.env")[f"AIPBX_SIP_PASSWORD_{CALLER}"]

        def edge_db(query: str) -> list[str]:
            """A query in the edge's own database (made by its start in compose's PostgreSQL)."""
            database = f"aipbx_edge_{INSTANCE}"
            psql = ("exec", "-T", "postgres", "psql", "-U", "aipbx", "-d", database, "-tAc", query)
            return compose(*psql).stdout.decode().split()

        heard = asyncio.run(
            ai_call_through_the_edge(sip_port, password, lambda: edge_db("SELECT username FROM location"))
        )
        # then the phone's registration was the edge's: usrloc in the edge's database, whose subscribers
        # are every extension of extensions.yaml
        assert heard["usrloc"] == [CALLER], heard
        extensions = load_directory(root / "asterisk" / "extensions.yaml")
        assert sorted(edge_db("SELECT username FROM subscriber")) == sorted(ext.ext for ext in extensions)
        # and the AI greeted the caller, with media from the node (Kamailio carries signalling only)
        assert "assistant" in heard["greeting"] and "help" in heard["greeting"], heard
        assert heard["media"] == NODE, heard
    except BaseException:
        print("\n--- docker compose ps / logs ---\n", compose.states(), "\n", compose.logs(), flush=True)
        raise
    finally:
        down_started = time.monotonic()
        compose("--profile", "edge", "down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        compose.timings["down"] = round(time.monotonic() - down_started, 1)
    volumes = subprocess.run(
        ["docker", "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={compose.project}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert volumes == [], volumes  # the edge's state and secrets volumes too
    compose.timings["call_setup"] = heard.get("setup_s", -1)
    compose.timings["whole_test"] = round(time.monotonic() - test_started, 1)
    print(f"\nedge compose test timings (s): {json.dumps(compose.timings)}\nthe caller heard: {heard!r}", flush=True)
