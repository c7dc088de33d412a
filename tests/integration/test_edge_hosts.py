"""The edge with each node on a network host of its own, and a phone behind a NAT (docs/scaling.md).

Each node's Asterisk and ARI app run in a Linux network namespace of their own on a bridge
(stack.netns.Lan: 10.77.x.2, .3; this host is .1), as on machines of their own on a LAN: their
127.0.0.1 is their own, and they reach the edge, its registration lookup and Redis at this host's LAN
address only. The edge and the phones stay on this host. The cluster, its phones and the checks are
test_edge.py's; only where the nodes live differs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator

import pytest

from softphone.analysis import speech_seconds
from stack.cluster import edge_config, node_config
from stack.instance import free_port
from stack.kamailio import Kamailio
from stack.netns import Lan, call_in, free_subnet
from tests.integration.audio_checks import until, until_greeting
from tests.integration.test_edge import (
    NODES,
    Cluster,
    ai_call_node,
    ai_sessions,
    edge_base,
    held_ai_call,
    lookup,
    nodes_active,
    phone_maker,
    phone_to_phone_call,
    running_cluster,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

#: Where a phone behind a NAT thinks it is (its home network): private, and not reachable from here.
PRIVATE = ("192.168.77.10", 5062)


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    """A bridge with one namespace per node, removed afterwards whatever failed."""
    assert os.geteuid() == 0, "network namespaces need root"
    assert shutil.which("ip"), "ip (iproute2) not found"
    pid = os.getpid()
    network = Lan(prefix=f"t{pid % 100000}", subnet=free_subnet("10.77.0.0/24", start=pid % 256))
    try:
        network.create()
        for _ in range(NODES):
            network.add_host()
        yield network
    finally:
        network.remove()


@pytest.fixture(scope="module")
def redis_on_the_lan(lan: Lan) -> Iterator[str]:
    """The session's Redis URL as the nodes reach it: at this host's LAN address.

    The session's Redis listens on loopback only (another host cannot reach it); a relay (socat) on the
    LAN address stands in for a Redis bound there, as a deployment with nodes on other hosts has.
    """
    assert shutil.which("socat"), "socat not found: apt-get install socat"
    url = urllib.parse.urlsplit(os.environ["AIPBX_REDIS_URL"])
    port = free_port(address=lan.host_address)
    relay = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{port},bind={lan.host_address},fork,reuseaddr",
            f"TCP:{url.hostname}:{url.port or 6379}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        credentials = url.netloc.rsplit("@", 1)[0] + "@" if "@" in url.netloc else ""
        yield urllib.parse.urlunsplit(url._replace(netloc=f"{credentials}{lan.host_address}:{port}"))
    finally:
        relay.terminate()
        relay.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, lan: Lan, redis_on_the_lan: str) -> Iterator[Cluster]:
    # given a deployment whose nodes are at their hosts' addresses, and whose edge they reach (and
    # whose lookup they ask) at this host's LAN address
    base = edge_base(f"testhosts{os.getpid()}", tmp_path_factory.mktemp("hosts"))
    base.node_addresses = tuple(lan.hosts.values())
    base.edge_node_address = lan.host_address
    edge_port, lookup_port = free_port(), free_port()
    nodes = []
    for index, namespace in enumerate(lan.hosts, start=1):
        node = node_config(
            base,
            index,
            NODES,
            (lan.host_address, edge_port),
            # a host of its own: the usual SIP port is free there
            sip_port=5060,
            http_port=free_port(),
            status_port=free_port(),
            lookup_port=lookup_port,
        )
        node.netns = namespace
        node.extra_env["AIPBX_REDIS_URL"] = redis_on_the_lan
        nodes.append(node)
    edge = Kamailio(edge_config(base, nodes, port=edge_port, lookup_port=lookup_port, tls_port=free_port()))
    # short NAT keep-alives, so that a test sees one
    edge.edge.nat_ping_interval = 2
    with running_cluster(base, nodes, edge) as running:
        yield running


@pytest.fixture
def phones(cluster: Cluster, lan: Lan):
    """Phones on this host's LAN address (where the nodes, on their hosts, can send media)."""
    return phone_maker(cluster, lan.host_address)


def test_the_nodes_and_the_lookup_are_configured_off_loopback(cluster: Cluster, lan: Lan) -> None:
    assert [node.sip_bind for node in cluster.nodes] == list(lan.hosts.values())
    assert all(node.edge == (lan.host_address, cluster.edge.edge.port) for node in cluster.nodes)
    assert cluster.edge.edge.lookup[0] == lan.host_address
    assert all(node.edge_lookup_url.startswith(f"http://{lan.host_address}:") for node in cluster.nodes)


async def test_phones_call_each_other_through_nodes_on_other_hosts(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as alice, phones("1002") as bob:
        node, packets = await phone_to_phone_call(cluster, alice, bob)
        print(f"phone to phone via node {node + 1} ({cluster.nodes[node].sip_bind}): {packets} packets")


async def test_the_ai_answers_on_either_node_on_its_own_host(cluster, phones):
    await nodes_active(cluster)
    async with phones("1001") as a, phones("1003") as b:
        # when two AI calls are held at once, they land one on each node
        held = [await held_ai_call(cluster, phone) for phone in (a, b)]
        assert sorted(node for _, node in held) == [0, 1], held
        # then each caller hears its node's AI (media from the node's host) ...
        await until(lambda: all(speech_seconds(c.received_audio()) > 1.0 for c, _ in held), 20, "both greetings")
        # ... and each node's ARI app, reached in its own namespace, holds one conversation
        await until(lambda: ai_sessions(cluster) == [1, 1], 5, "one AI conversation on each node")
        for call, node in held:
            print(f"AI on node {node + 1} ({cluster.nodes[node].sip_bind}): {len(call.rx_packets)} packets")
            await call.hangup()
        # (what a call's set-up costs here: INVITE to the AI's answer, printed, not judged)
        setups = sorted([(await ai_call_node(cluster, a))[1] for _ in range(10)])
        print(f"AI call set-up via nodes on other hosts: p50 {setups[4] * 1000:.0f} ms, max {setups[-1] * 1000:.0f} ms")


def _lookup_from(namespace: str, url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    return call_in(namespace, get)


async def test_the_lookup_answers_nodes_on_other_hosts_and_never_a_phone(cluster, phones, lan: Lan):
    async with phones("1002"):
        # a node's host asks over the LAN (as its dialplan's CURL does)
        namespace = next(iter(lan.hosts))
        url = cluster.nodes[0].edge_lookup_url
        assert await asyncio.to_thread(_lookup_from, namespace, f"{url}/1002") == (200, "yes")
        assert await asyncio.to_thread(_lookup_from, namespace, f"{url}/1003") == (200, "no")
        # a phone's address on the same LAN (this host's, where the phones are) gets nothing
        assert await asyncio.to_thread(lookup, cluster, "1002", lan.host_address) == (403, "")


def registration(cluster: Cluster, ext: str) -> tuple[str, str | None]:
    """``ext``'s Contact in usrloc, and where its REGISTER really came from (``received``, behind a NAT)."""
    import psycopg

    url = cluster.edge.edge.db_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT contact, received FROM location WHERE username = %s", (ext,)).fetchone()
    assert row is not None, f"{ext} is not registered"
    return row


async def test_a_phone_behind_nat_is_reached_through_its_nat_with_audio_both_ways(cluster, phones, lan: Lan):
    await nodes_active(cluster)
    # given a phone whose Via, Contact and SDP name its home network's private address, which neither the
    # edge nor the nodes can reach (its NAT maps it to this host's LAN address and another port)
    async with phones("1003", advertised=PRIVATE) as outside, phones("1001") as office:
        # then the edge keeps, beside its private Contact, where its REGISTER really came from
        contact, received = registration(cluster, "1003")
        assert f"@{PRIVATE[0]}:{PRIVATE[1]}" in contact, contact
        assert received == f"sip:{lan.host_address}:{outside.port}", received
        # and keeps its NAT's mapping open with OPTIONS (every 2 s here)
        await until(lambda: outside.options_received >= 1, 10, "a NAT keep-alive from the edge")
        # when the office phone calls it, it rings (the INVITE went to the real address), answers, and
        # both hear each other: the node sends its RTP where the phone's really comes from; the node's
        # BYE reaches it through its NAT (its answer's Contact was rewritten)
        node, packets = await phone_to_phone_call(cluster, office, outside)
        print(f"NAT phone called via node {node + 1}: {packets} packets received, {outside.options_received} pings")
        # and when it calls the office phone, which hangs up, that BYE reaches it too (its INVITE's Contact)
        node, packets = await phone_to_phone_call(cluster, outside, office, callee_hangs_up=True)
        print(f"NAT phone calling via node {node + 1}: the office phone received {packets} packets")
        # and when it calls the AI, it hears the greeting from the node
        call = await outside.call("1004", timeout=15)
        await until_greeting(call, 1.0, 20)
        await call.hangup()


async def test_a_phone_behind_nat_over_tls_is_called_over_its_connection_with_audio(cluster, phones, lan: Lan):
    import ssl

    await nodes_active(cluster)
    # given a phone outside the office as it usually is: behind a NAT, over TLS (trusting the edge's
    # self-signed certificate, which names the edge's LAN address)
    cert, _ = cluster.edge.edge.tls_files
    outside = phones(
        "1002",
        advertised=PRIVATE,
        transport="tls",
        server=(lan.host_address, cluster.edge.edge.tls_port),
        tls_context=ssl.create_default_context(cafile=str(cert)),
    )
    async with outside as phone, phones("1001") as office:
        contact, received = registration(cluster, "1002")
        assert f"@{PRIVATE[0]}:{PRIVATE[1]};transport=tls" in contact, contact
        assert received is not None and received.startswith(f"sip:{lan.host_address}:{phone.port}"), received
        # when the office phone calls it, then the INVITE reaches it over its connection and both hear
        # each other through the node
        node, packets = await phone_to_phone_call(cluster, office, phone)
        print(f"NAT phone over TLS called via node {node + 1}: {packets} packets received")
        assert not phone.connection_lost.is_set()
