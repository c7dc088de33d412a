"""Two Asterisk + ARI-app nodes behind a real Kamailio edge, over real SIP (docs/scaling.md).

Phones register to Kamailio only (digest auth and usrloc in PostgreSQL); their calls are dispatched
to the nodes (the one with the fewest calls in progress), which ring extensions back through the edge.
What a caller would notice is judged: the other phone's tone, the AI's greeting, and where the media
comes from (the node, never the edge), which is also how a test tells which node took a call.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import pytest

from softphone.analysis import dominant_frequency, silent_tail, speech_seconds
from stack import fail2ban
from stack.asterisk import Asterisk
from stack.cluster import edge_config
from stack.config import StackConfig
from stack.instance import AppProcess, free_port, scratch_config, scratch_nodes
from stack.kamailio import Kamailio
from tests.integration.audio_checks import transcribe, until, until_greeting
from tests.integration.conftest import RING_SECONDS
from tests.integration.fail2ban_server import Fail2ban

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

NODES = 2


@dataclass
class Cluster:
    base: StackConfig
    nodes: list[StackConfig]
    asterisks: list[Asterisk]
    apps: list[AppProcess]
    edge: Kamailio

    @property
    def edge_address(self) -> tuple[str, int]:
        return self.edge.edge.address

    def node_index(self, media_address: str) -> int:
        """Which node (0-based) a call's media comes from."""
        return [node.sip_bind for node in self.nodes].index(media_address)

    def cdr_lines(self, index: int) -> list[dict]:
        """The CDR lines node ``index``'s ARI app wrote (each node has its own directory)."""
        lines = []
        for path in sorted(self.nodes[index].cdr_dir.glob("cdr-*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return lines

    def started_calls(self) -> list[str]:
        """The call ids of ``call.started`` events in the deployment's one event stream."""
        import redis
        from django.conf import settings

        from ariapp.events import stream_name

        client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)
        entries = client.xrange(stream_name(self.base.instance))
        return [fields["call_id"] for _, fields in entries if fields.get("type") == "call.started"]

    def location(self) -> dict[str, str]:
        """usrloc as PostgreSQL holds it: extension -> contact."""
        import psycopg

        url = self.edge.edge.db_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=5) as conn:
            return dict(conn.execute("SELECT username, contact FROM location").fetchall())


def edge_base(name: str, directory) -> StackConfig:
    """The scratch deployment an edge test runs (``name``: test*, the names the session's Redis user may
    use, stack.redis_acl.suite_user)."""
    base = scratch_config(name, directory, ring_seconds=RING_SECONDS)
    # Each node gets half of these; the default stack (10000-20000) and the softphones (40000+) are elsewhere.
    base.rtp_start, base.rtp_end = 30000, 39999
    # No knowledge is asked for here: no Chroma server to start.
    base.extra_env["AIPBX_KNOWLEDGE_STORE"] = "none"
    return base


@contextmanager
def running_cluster(base: StackConfig, nodes: list[StackConfig], edge: Kamailio) -> Iterator[Cluster]:
    """Every node (Asterisk, then its ARI app) and the edge started; all stopped and the edge's database
    and the deployment's event stream removed afterwards, whatever failed."""
    import redis
    from django.conf import settings

    from ariapp.events import stream_name
    from stack.kamailio import drop_database

    asterisks = [Asterisk(node) for node in nodes]
    apps = [AppProcess(node) for node in nodes]
    try:
        for asterisk in asterisks:
            asterisk.start()
        for app in apps:
            app.start()
        edge.start()
        yield Cluster(base, nodes, asterisks, apps, edge)
    finally:
        edge.stop()
        for app in apps:
            app.stop()
        for asterisk in asterisks:
            asterisk.stop()
        drop_database(edge.edge)
        redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL).delete(stream_name(base.instance))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    base = edge_base(f"testedge{os.getpid()}", tmp_path_factory.mktemp("edge"))
    nodes, edge_port, lookup_port = scratch_nodes(base, NODES)
    edge = Kamailio(edge_config(base, nodes, port=edge_port, lookup_port=lookup_port, tls_port=free_port()))
    with running_cluster(base, nodes, edge) as running:
        yield running


@pytest.fixture
def phones(cluster: Cluster):
    """``async with phones("1001") as phone`` — a softphone registered at the edge; closed afterwards."""
    return phone_maker(cluster, "127.0.0.1")


def phone_maker(cluster: Cluster, default_ip: str):
    """``async with make("1001") as phone``: a softphone on ``default_ip`` (unless ``local_ip`` says
    otherwise) registered at the edge's SIP port; unregistered and closed afterwards. Other keywords go to
    the phone (e.g. ``advertised``, or ``transport`` with the TLS port as ``server``)."""
    from softphone import Phone

    @asynccontextmanager
    async def make(ext: str, register: bool = True, local_ip: str = default_ip, **options):
        options.setdefault("server", cluster.edge_address)
        phone = Phone(ext=ext, password=cluster.base.sip_password(ext), local_ip=local_ip, **options)
        await phone.start()
        try:
            if register:
                await phone.register(expires=120)
            yield phone
        finally:
            if register:
                try:
                    await phone.unregister()
                except Exception:  # the call may have already torn the registration down
                    pass
            await phone.close()

    return make


async def nodes_active(cluster: Cluster, timeout: float = 10.0) -> None:
    """Both nodes answer the edge's OPTIONS probes."""
    await until(
        lambda: (
            all(flags.startswith("A") for flags in cluster.edge.node_states().values())
            and len(cluster.edge.node_states()) == NODES
        ),
        timeout,
        f"every node active at the edge (have {cluster.edge.node_states()})",
    )


async def test_phones_register_at_the_edge_and_call_each_other(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as alice, phones("1002") as bob:
        # given both phones registered at the edge, and usrloc in PostgreSQL says so
        location = cluster.location()
        assert location.keys() >= {"1001", "1002"}, location
        assert f":{bob.port}" in location["1002"]
        # when 1001 calls 1002 and 1002 answers, then each hears the other through a node
        await phone_to_phone_call(cluster, alice, bob)


async def phone_to_phone_call(cluster: Cluster, caller, callee, *, callee_hangs_up: bool = False) -> tuple[int, int]:
    """``caller`` calls ``callee``, which answers; both play a tone for 2 s; the caller (or the callee)
    hangs up.

    Asserts that each side heard the other's tone, that both media streams ran to the same node (not the
    edge), and that the other side got the BYE. Returns the node and the packets the callee received.
    """
    outgoing = await caller.dial(callee.ext)
    incoming = await callee.next_incoming(timeout=15)
    answered = await incoming.answer()
    await asyncio.wait_for(outgoing.answered(), 5)
    outgoing.play_tone(440, 2.0)
    answered.play_tone(1000, 2.0)
    await asyncio.sleep(3.0)
    assert abs(dominant_frequency(answered.received_audio()) - 440) < 15
    assert abs(dominant_frequency(outgoing.received_audio()) - 1000) < 15
    assert outgoing.remote_media is not None and answered.remote_media is not None
    assert outgoing.remote_media.address == answered.remote_media.address
    node = cluster.node_index(outgoing.remote_media.address)  # a node's address
    ending, other = (answered, outgoing) if callee_hangs_up else (outgoing, answered)
    await ending.hangup()
    await asyncio.wait_for(other.ended.wait(), 5)
    return node, len(answered.rx_packets)


async def test_a_wrong_password_is_refused_at_the_edge(cluster):
    from softphone import Phone
    from softphone.errors import RegistrationFailed

    async with Phone(ext="1001", password="not-the-password", server=cluster.edge_address, local_ip="127.0.0.1") as p:
        with pytest.raises(RegistrationFailed) as failed:
            await p.register(expires=120)
    assert failed.value.status in (401, 403)
    # an extension that does not exist gets the same answer; the edge's log (fail2ban's) says which it was
    async with Phone(ext="1999", password="anything", server=cluster.edge_address, local_ip="127.0.0.1") as p:
        with pytest.raises(RegistrationFailed) as unknown:
            await p.register(expires=120)
    assert unknown.value.status == failed.value.status
    log = cluster.edge.edge.log_path.read_text(errors="replace")
    assert "auth failed: REGISTER from 127.0.0.1 port " in log and " as 1001: wrong password\n" in log
    assert " as 1999: unknown user\n" in log


async def test_an_unanswered_call_reaches_the_ai_on_the_node_that_took_it(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as caller, phones("1002") as callee:
        # given 1002 is registered at the edge, rings, and never answers
        call = await caller.dial("1002")
        await callee.next_incoming(timeout=15)
        started = time.monotonic()
        # when the no-answer timeout passes on the node
        await asyncio.wait_for(call.answered(), RING_SECONDS + 8)
        assert time.monotonic() - started < RING_SECONDS + 3
        # then that node's ARI app answers: the caller hears the greeting, from the node's media address
        # (the whole greeting, up to its trailing quiet: on a loaded machine it arrives slower than it plays)
        await until_greeting(call, 4.0, 20)
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
        heard = await transcribe(call.received_audio())
        assert "assistant" in heard and "help" in heard, heard
        node = cluster.node_index(call.remote_media.address)
        assert cluster.apps[node].status()["ai_sessions"] == 1
        before = [len(cluster.cdr_lines(i)) for i in range(NODES)]
        await call.hangup()
    # and that node's app, only that one, writes the call's CDR line
    await until(lambda: len(cluster.cdr_lines(node)) > before[node], 15, "the CDR line")
    (line,) = cluster.cdr_lines(node)[before[node] :]
    assert line["ai_handled"] is True and line["callee"] == "1002"
    assert line["call_id"].startswith(cluster.nodes[node].name + "-")  # call ids name the node's Asterisk
    assert [len(cluster.cdr_lines(i)) for i in range(NODES) if i != node] == [
        b for i, b in enumerate(before) if i != node
    ]


async def test_a_phone_guessing_passwords_at_the_edge_is_banned_by_fail2ban_and_a_good_phone_is_not(cluster, tmp_path):
    from softphone import Phone
    from softphone.errors import RegistrationFailed

    # given fail2ban watching the edge's log with the edge's jail (maxretry 3 here), and a phone with the
    # right password (addresses other than 127.0.0.1, the flood test's and the pike-exempt host's own)
    good_ip, bad_ip = "127.0.0.6", "127.0.0.7"
    jail = Fail2ban(tmp_path, cluster.edge.edge.log_path, fail2ban.EDGE)
    jail.start()
    try:
        async with Phone(
            ext="1001", password=cluster.base.sip_password("1001"), server=cluster.edge_address, local_ip=good_ip
        ) as good:
            await good.register(expires=120, refresh=False)
            await good.register(expires=120, refresh=False)
            await good.unregister()
        # when a phone from one address guesses 1002's password five times
        for _ in range(5):
            guess = Phone(ext="1002", password="wrong-password", server=cluster.edge_address, local_ip=bad_ip)
            async with guess as bad:
                with pytest.raises(RegistrationFailed):
                    await bad.register(expires=120, refresh=False)
        # then the edge logged each failure with the sender's address ...
        lines = cluster.edge.edge.log_path.read_text(errors="replace").splitlines()
        failed = [line for line in lines if f"auth failed: REGISTER from {bad_ip} port " in line]
        assert len(failed) == 5 and all(line.endswith(" as 1002: wrong password") for line in failed), failed
        assert not [line for line in lines if f"auth failed: REGISTER from {good_ip} " in line]
        # ... and fail2ban banned that address (its polling backend looks every second), not the good one
        assert await asyncio.to_thread(jail.wait_banned, bad_ip, 30), jail.log.read_text()[-3000:]
        status = jail.client("status", fail2ban.EDGE.jail).stdout
        assert bad_ip in status and good_ip not in status
        assert good_ip not in jail.banned()
    finally:
        jail.stop()


def test_the_edge_filter_bans_the_sender_even_when_its_call_id_names_another_address(tmp_path) -> None:
    # given lines as the edge writes them, one whose Call-ID (the sender's choice) carries a whole
    # "auth failed" line naming someone else, and a line of the timer process (no request, no time)
    assert shutil.which("fail2ban-regex"), "fail2ban-regex not found: apt-get install fail2ban"
    forged = "x} <script>: auth failed: INVITE from 198.51.100.7 port 5060 over udp as 1002: wrong password"
    log = tmp_path / "kamailio.log"
    log.write_text(
        " 2(4837) WARNING: 2025-01-31 12:00:00 +0000 {1 " + forged + "} <script>: auth failed: INVITE from "
        "203.0.113.9 port 40000 over udp as -: unknown user\n"
        " 1(4836) WARNING: 2025-01-31 12:00:01 +0000 {1 abc@pc33} <script>: auth failed: REGISTER from "
        "203.0.113.10 port 5060 over tls as 1002: not its own extension\n"
        " 3(4838) WARNING: <script>: node down: sip:127.0.0.3:5060\n"
    )
    # when
    result = subprocess.run(
        ["fail2ban-regex", "--print-all-matched", "-o", "<ip>", str(log), str(fail2ban.EDGE.filter_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then only the senders' own addresses count
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["203.0.113.9", "203.0.113.10"]


async def test_a_phone_outside_registers_over_tls_calls_the_ai_and_is_called_over_its_connection(cluster, phones):
    from softphone import Phone

    await nodes_active(cluster)
    # given a phone that trusts only the edge's own (self-signed) certificate, and one in the office
    cert, _ = cluster.edge.edge.tls_files
    outside = Phone(
        ext="1003",
        password=cluster.base.sip_password("1003"),
        server=("127.0.0.1", cluster.edge.edge.tls_port),
        local_ip="127.0.0.1",
        transport="tls",
        tls_context=ssl.create_default_context(cafile=str(cert)),  # verifies the chain and the address
    )
    await outside.start()
    try:
        # when it registers over TLS
        await outside.register(expires=120)
        # then the edge keeps its registration on the TLS listener (where calls to it must leave from)
        import psycopg

        url = cluster.edge.edge.db_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=5) as conn:
            (socket_,) = conn.execute("SELECT socket FROM location WHERE username = '1003'").fetchone()
        assert socket_ == f"tls:127.0.0.1:{cluster.edge.edge.tls_port}", socket_
        # and it calls the AI: answered by a node, media straight from the node as for any phone
        node, _ = await ai_call_node(cluster, outside)
        assert node in range(NODES)
        # and a phone in the office (UDP) calls it: the INVITE reaches it over its TLS connection
        async with phones("1001") as office:
            call = await office.dial("1003")
            incoming = await outside.next_incoming(timeout=15)
            answered = await incoming.answer()
            await asyncio.wait_for(call.answered(), 10)
            call.play_tone(440, 1.0)
            await call.play_done()
            await asyncio.sleep(0.3)
            assert len(answered.rx_packets) > 25
            await call.hangup()
            await asyncio.wait_for(answered.ended.wait(), 10)
        assert not outside.connection_lost.is_set()
        await outside.unregister()
    finally:
        await outside.close()


async def test_tls_at_the_edge_refuses_a_phone_that_does_not_trust_its_certificate(cluster) -> None:
    from softphone import Phone, SoftphoneError

    phone = Phone(
        ext="1003",
        password=cluster.base.sip_password("1003"),
        server=("127.0.0.1", cluster.edge.edge.tls_port),
        local_ip="127.0.0.1",
        transport="tls",
    )  # the system's authorities only

    with pytest.raises(SoftphoneError, match="certificate verify failed"):
        await phone.start()
    await phone.close()


async def test_a_callee_that_is_not_registered_gets_the_ai_at_once_as_on_one_node(cluster, phones):
    """The node asks the edge's usrloc before the recording notice: nobody can ring, so no notice and no
    wait; the AI's greeting says the call is recorded."""
    await nodes_active(cluster)
    async with phones("1001") as caller:
        started = time.monotonic()
        call = await caller.call("1004", timeout=10)
        assert time.monotonic() - started < 1.5
        assert speech_seconds(call.early_audio()) < 0.2  # no recording notice before the answer
        await until_greeting(call, 1.0, 10)
        await call.hangup()


async def ai_call_node(cluster: Cluster, phone, ext: str = "1004") -> tuple[int, float]:
    """Call ``ext`` (not registered: the AI answers at once) and hang up once answered; returns the node
    that took it and the seconds from INVITE to the answer."""
    started = time.monotonic()
    call = await phone.call(ext, timeout=15)
    setup = time.monotonic() - started
    node = cluster.node_index(call.remote_media.address)
    await call.hangup()
    return node, setup


async def held_ai_call(cluster: Cluster, phone, ext: str = "1004"):
    """An AI call left up (the caller listens); returns the call and the node that took it."""
    call = await phone.call(ext, timeout=15)
    return call, cluster.node_index(call.remote_media.address)


def loads(cluster: Cluster) -> list[int]:
    """Each node's calls in progress as the edge counts them, in node order."""
    counted = cluster.edge.node_loads()
    return [counted[(node.sip_bind, node.sip_port)] for node in cluster.nodes]


def ai_sessions(cluster: Cluster) -> list[int]:
    """Each node's AI conversations in progress, as its ARI app reports them."""
    return [app.status()["ai_sessions"] for app in cluster.apps]


async def test_a_new_call_goes_to_the_node_with_fewer_calls_in_progress(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as a, phones("1002") as b, phones("1003") as c:
        # given three AI calls held at once: they land 2 and 1 (each to the node with fewer at that moment)
        held = [await held_ai_call(cluster, phone) for phone in (a, b, c)]
        on = [node for _, node in held]
        assert sorted(on.count(i) for i in range(NODES)) == [1, 2], on
        busy = max(range(NODES), key=on.count)
        assert loads(cluster) == [on.count(i) for i in range(NODES)]
        # when the lone call ends, one node holds two calls and the other none
        lone = next(call for call, node in held if node != busy)
        await lone.hangup()
        await until(lambda: loads(cluster)[1 - busy] == 0, 5, "the ended call to be uncounted")
        # then every new call goes to the idle node, short ones (round robin would send half to the busy
        # one) and held ones alike, until both hold as many
        short = [(await ai_call_node(cluster, phone))[0] for phone in (a, b, a, b, a, b)]
        assert short == [1 - busy] * 6, short
        more = [await held_ai_call(cluster, phone) for phone in (a, b)]
        assert [node for _, node in more] == [1 - busy] * 2, more
        assert loads(cluster) == [2, 2]
        await until(lambda: ai_sessions(cluster) == [2, 2], 5, "two AI conversations on each node")
        print(f"2 held on node {busy + 1}: 6 short and 2 held calls all went to the other; loads {loads(cluster)}")
        # and both nodes' calls are in the deployment's one event stream, the console's
        await until(
            lambda: all(
                any(call_id.startswith(node.name + "-") for call_id in cluster.started_calls())
                for node in cluster.nodes
            ),
            10,
            "call.started events of both nodes in one stream",
        )
        for call, _ in [*held, *more]:
            if call is not lone:
                await call.hangup()
    await until(lambda: loads(cluster) == [0, 0], 5, "every ended call to be uncounted")


async def test_nodes_leave_and_join_without_restart_and_the_others_keep_their_call_counts(cluster, phones):
    await nodes_active(cluster)
    first, second = ((node.sip_bind, node.sip_port) for node in cluster.nodes)
    async with phones("1001") as a, phones("1003") as b:
        # given one AI call held on a node
        call, busy = await held_ai_call(cluster, a)
        idle = 1 - busy
        try:
            # when the idle node leaves the list (no restart), every call goes to the busy one
            cluster.edge.set_nodes([(first, second)[busy]])
            assert list(cluster.edge.node_loads().values()) == [1]
            taken = [(await ai_call_node(cluster, phone))[0] for phone in (b, b)]
            assert taken == [busy, busy], taken
            # when it joins again, the busy node still counts its call: the next calls go to the idle one
            cluster.edge.set_nodes([first, second])
            await nodes_active(cluster)
            assert loads(cluster)[busy] == 1 and loads(cluster)[idle] == 0, loads(cluster)
            taken = [(await ai_call_node(cluster, phone))[0] for phone in (b, b)]
            assert taken == [idle, idle], taken
            # (a dispatcher.reload of the same table would have forgotten the call in progress)
            cluster.edge.reload_nodes()
            assert loads(cluster) == [0, 0], loads(cluster)
        finally:
            await call.hangup()
    cluster.edge.set_nodes([first, second])
    await nodes_active(cluster)


def options_request(source: tuple[str, int], target: tuple[str, int], n: int) -> bytes:
    host, port = source
    return (
        f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-flood{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:flood@{host}>;tag=f{n}\r\n"
        f"To: <sip:{target[0]}:{target[1]}>\r\n"
        f"Call-ID: flood-{n}@{host}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answered(sock: socket.socket, wait: float) -> int:
    sock.settimeout(wait)
    count = 0
    try:
        while True:
            sock.recvfrom(4096)
            count += 1
    except TimeoutError:
        return count


async def test_a_flooding_address_is_banned_and_phones_elsewhere_go_on(cluster, phones):
    # given an address that sends far more than the edge allows (pike: per source address)
    target = cluster.edge_address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        flood.bind(("127.0.0.9", 0))
        source = flood.getsockname()
        # when it sends 3x the allowed density at once
        burst = 3 * cluster.edge.edge.pike_density
        for n in range(burst):
            flood.sendto(options_request(source, target, n), target)
        replies = answered(flood, 1.0)
        # then the edge stopped answering it, and still ignores it a moment later
        assert replies < burst, replies
        flood.sendto(options_request(source, target, burst + 1), target)
        assert answered(flood, 1.0) == 0
    print(f"flood: {replies} of {burst} requests answered before the ban")
    # and a phone from another address registers and calls as before (127.0.0.8: not this host's own
    # address, which pike never counts)
    async with phones("1001", local_ip="127.0.0.8") as phone:
        node, _ = await ai_call_node(cluster, phone)
        assert node in range(NODES)


async def test_a_killed_node_is_taken_out_within_the_probing_interval_and_taken_back(cluster, phones):
    await nodes_active(cluster)
    victim = cluster.nodes[1]
    async with phones("1001") as caller:
        # when node 2's Asterisk dies (SIGKILL: no goodbye)
        killed = time.monotonic()
        cluster.asterisks[1].kill()
        # then the edge marks it down once a probe goes unanswered
        await until(
            lambda: not cluster.edge.node_states()[(victim.sip_bind, victim.sip_port)].startswith("A"),
            15,
            "the edge to notice",
            interval=0.05,
        )
        noticed = time.monotonic() - killed
        print(f"node down noticed after {noticed:.2f} s (probe interval {cluster.edge.edge.ping_interval} s)")
        # a probe is sent every interval and times out after 2 s (tm fr_timer)
        assert noticed < cluster.edge.edge.ping_interval + 2.5
        # and every new call goes to the survivor, with no wait for the dead node
        setups = []
        for _ in range(4):
            node, setup = await ai_call_node(cluster, caller)
            assert node == 0, node
            setups.append(setup)
        print(f"calls after the kill: answered in {[round(s, 2) for s in setups]} s")
        assert max(setups) < min(setups) + 1.0  # none waited for a fr_timer on the dead node
        # when the node comes back, it is probed active and takes calls again
        cluster.asterisks[1].start()
        cluster.apps[1].stop()
        cluster.apps[1].start()
        await nodes_active(cluster, timeout=15)
        held = [await held_ai_call(cluster, caller) for _ in range(2)]
        assert sorted(node for _, node in held) == [0, 1], held
        for call, _ in held:
            await call.hangup()


async def test_a_call_sent_to_a_node_that_just_died_goes_to_the_next_one(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as a, phones("1003") as b:
        # given a call in progress on one node, so the next call goes to the other (fewer calls) ...
        held, busy = await held_ai_call(cluster, a)
        victim = 1 - busy
        await until(lambda: loads(cluster)[busy] == 1, 5, f"the edge to count the held call ({loads(cluster)})")
        # ... and that other node dies, with no probe noticing yet
        cluster.asterisks[victim].kill()
        try:
            # when the next call arrives, it is sent to the dead node, whose INVITE times out (tm
            # fr_timer, 2 s), and goes on to the next node (failure route): answered by the survivor
            node, setup = await ai_call_node(cluster, b)
            print(f"call sent to the dead node: answered by node {node + 1} in {setup:.2f} s")
            assert node == busy, (node, busy)
            assert 1.5 < setup < 3.5, setup
            # and the call in progress on the survivor went on undisturbed
            assert held.state == "confirmed", held.state
            await held.hangup()
        finally:
            cluster.asterisks[victim].start()
            cluster.apps[victim].stop()
            cluster.apps[victim].start()
    await nodes_active(cluster, timeout=15)


async def test_calls_on_a_crashed_node_get_their_cdr_lines_and_the_other_node_is_undisturbed(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as a, phones("1003") as b:
        # given two AI calls in progress, one on each node
        calls = await asyncio.gather(a.call("1004", timeout=15), b.call("1004", timeout=15))
        on_node = {cluster.node_index(call.remote_media.address): call for call in calls}
        assert sorted(on_node) == [0, 1], on_node
        await until(lambda: all(speech_seconds(c.received_audio()) > 0.5 for c in calls), 10, "both greetings")
        before = [len(cluster.cdr_lines(i)) for i in range(NODES)]
        # when node 2's Asterisk crashes (SIGKILL: no BYE to anyone) and is started again
        received = len(on_node[0].rx_packets)
        await asyncio.to_thread(cluster.asterisks[1].kill)
        await asyncio.sleep(2.0)
        # then the call on node 1 kept its audio (50 packets a second) ...
        assert len(on_node[0].rx_packets) - received >= 90, len(on_node[0].rx_packets) - received
        await asyncio.to_thread(cluster.asterisks[1].start)
        # ... and node 2's app, connected again, ends its call with a CDR line saying why
        await until(cluster.apps[1].ready, 20, "node 2's ARI app to be connected again")
        await until(lambda: len(cluster.cdr_lines(1)) > before[1], 20, "the crashed call's CDR line")
        (line,) = cluster.cdr_lines(1)[before[1] :]
        assert line["termination_reason"] == "asterisk_restart" and line["ai_handled"] is True
        await on_node[1].hangup()  # nobody can answer its BYE: the phone gives up
        await on_node[0].hangup()
    await until(lambda: len(cluster.cdr_lines(0)) > before[0], 15, "the undisturbed call's CDR line")
    (line,) = cluster.cdr_lines(0)[before[0] :]
    assert line["termination_reason"] == "caller_hangup"
    await nodes_active(cluster, timeout=15)


def lookup(cluster: Cluster, ext: str, source: str) -> tuple[int, str]:
    """Ask the edge's registration lookup about ``ext`` from address ``source``: (HTTP status, body)."""
    import http.client

    host, port = cluster.edge.edge.lookup
    connection = http.client.HTTPConnection(host, port, timeout=5, source_address=(source, 0))
    try:
        connection.request("GET", f"/registered/{ext}")
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


async def test_the_registration_lookup_answers_the_nodes_host_and_never_a_phone(cluster, phones):
    async with phones("1002"):
        # given 1002 registered; the nodes on loopback ask from this host's 127.0.0.1
        assert await asyncio.to_thread(lookup, cluster, "1002", "127.0.0.1") == (200, "yes")
        assert await asyncio.to_thread(lookup, cluster, "1003", "127.0.0.1") == (200, "no")
        # when a phone's address (not a node's, not this host's loopback) asks, then it learns nothing
        assert await asyncio.to_thread(lookup, cluster, "1002", "127.0.0.8") == (403, "")
