"""Several Asterisk + ARI-app nodes behind one Kamailio edge, on one machine (``make up NODES=2``).

A node is a :class:`StackConfig` of its own (its Asterisk instance, ARI app name, ports, RTP range,
state, CDR and sounds directories) derived from the deployment's config: it shares the deployment's
name for everything the console reads (event stream, HITL keys, knowledge index, Redis user), the
knowledge store and the recordings folder. Node ``i`` (from 1) listens on ``127.0.0.(i+1)`` (the
loopback range: every node keeps the SIP port and no interface has to be created) unless the
deployment names its address (``AIPBX_NODE_ADDRESSES``): then the edge reaches it there from its own
node-side address (``AIPBX_EDGE_NODE_ADDRESS``), and the registration lookup listens where the nodes
can reach it (``AIPBX_EDGE_LOOKUP_ADDRESS``, by default that same address) and answers only them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Sequence

from stack.config import SettingsError, StackConfig, primary_ip
from stack.kamailio import EdgeConfig, lookup_url_of, subscribers_of

#: Ports of node i above the deployment's own (ARI/HTTP and the ARI app's status server).
PORT_STEP = 10


def node_address(base: StackConfig, index: int) -> str:
    """Node ``index``'s (from 1) SIP address: the deployment's ``node_addresses``, else 127.0.0.(index + 1)."""
    if index <= len(base.node_addresses):
        return base.node_addresses[index - 1]
    return f"127.0.0.{index + 1}"


def edge_node_side(base: StackConfig) -> str:
    """The edge's address the nodes reach: the deployment's ``edge_node_address``, else loopback (or the
    SIP address when the deployment binds one)."""
    if base.edge_node_address:
        return base.edge_node_address
    return "127.0.0.1" if base.sip_bind == "0.0.0.0" else base.sip_bind


def is_loopback(address: str) -> bool:
    return ipaddress.IPv4Address(address).is_loopback


def on_this_host(address: str) -> bool:
    """Whether ``address`` is one of this host's (a node there can be started here)."""
    if is_loopback(address):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def rtp_range(base: StackConfig, index: int, count: int) -> tuple[int, int]:
    """Node ``index``'s share of the deployment's RTP ports (an even start: RTP even, RTCP odd)."""
    span = (base.rtp_end - base.rtp_start + 1) // count
    span -= span % 2
    start = base.rtp_start + (index - 1) * span
    return start, start + span - 1


def node_config(
    base: StackConfig,
    index: int,
    count: int,
    edge: tuple[str, int],
    *,
    sip_port: int | None = None,
    http_port: int | None = None,
    status_port: int | None = None,
    lookup_port: int | None = None,
) -> StackConfig:
    """The config of node ``index`` (from 1) of ``count``, reached by and ringing phones through ``edge``."""
    name = f"{base.name}-n{index}"
    rtp_start, rtp_end = rtp_range(base, index, count)
    return dataclasses.replace(
        base,
        name=name,
        deployment=base.instance,
        edge=edge,
        var_dir=base.var_dir.parent / name,
        cdr_dir=base.cdr_dir / name,
        sip_bind=node_address(base, index),
        sip_port=base.sip_port if sip_port is None else sip_port,
        http_port=base.http_port + PORT_STEP * index if http_port is None else http_port,
        status_port=base.status_port + PORT_STEP * index if status_port is None else status_port,
        rtp_start=rtp_start,
        rtp_end=rtp_end,
        ari_app=f"{base.ari_app}-n{index}",
        # the edge's registration lookup (EdgeConfig.lookup: the edge's node-side address and SIP port + 2
        # unless given)
        edge_lookup_url=lookup_url_of((base.edge_lookup_address or edge[0], lookup_port or edge[1] + 2)),
        # TLS and phones behind NAT are the edge's business in this topology: the nodes talk to it only.
        tls_cert=None,
        tls_key=None,
        external_address="",
        local_net=(),
        extra_env=dict(base.extra_env),
    )


def edge_config(
    base: StackConfig,
    nodes: Sequence[StackConfig],
    *,
    port: int | None = None,
    lookup_port: int = 0,
    tls_port: int | None = None,
) -> EdgeConfig:
    """The edge of the deployment: where its phones register (the deployment's SIP address and ports).

    It offers TLS on the deployment's TLS port with the deployment's certificate (``AIPBX_SIP_TLS_CERT``)
    or, without one, a self-signed certificate of its own.
    """
    node_side = edge_node_side(base)
    if base.sip_bind == "0.0.0.0":
        # Softphones on the LAN at this host's address; the nodes at the node side (loopback by default).
        listen = tuple(dict.fromkeys(("127.0.0.1", primary_ip(), node_side)))
    else:
        listen = tuple(dict.fromkeys((base.sip_bind, node_side)))
    return EdgeConfig(
        name=base.instance,
        var_dir=base.var_dir / "edge",
        listen=listen,
        port=base.sip_port if port is None else port,
        nodes=[(node.sip_bind, node.sip_port) for node in nodes],
        subscribers=subscribers_of(base),
        db_password=base.secrets["AIPBX_EDGE_DB_PASSWORD"],
        lookup_port=lookup_port,
        node_side=node_side,
        lookup_address=base.edge_lookup_address,
        tls_port=base.tls_port if tls_port is None else tls_port,
        tls_cert=base.tls_cert,
        tls_key=base.tls_key,
    )


# --- make up NODES=N / make down ----------------------------------------------------------------------
def _nodes_file(base: StackConfig):
    return base.var_dir / "nodes"


def running_nodes(base: StackConfig) -> int:
    """How many nodes ``up --nodes`` started for this deployment (0: none, or a single Asterisk)."""
    try:
        return int(_nodes_file(base).read_text().strip())
    except (OSError, ValueError):
        return 0


def nodes_of(base: StackConfig, count: int) -> list[StackConfig]:
    """The nodes ``make up NODES=count`` runs. With SIP on every interface (softphones on the LAN), nodes on
    loopback offer this host's LAN address for media: their own addresses are not reachable."""
    edge = (edge_node_side(base), base.sip_port)
    return [_lan_media(base, node_config(base, i, count, edge)) for i in range(1, count + 1)]


def _lan_media(base: StackConfig, node: StackConfig) -> StackConfig:
    """With SIP on every interface (phones on the LAN), a node on loopback offers this host's LAN address
    for media: its own address is not reachable from a phone."""
    if base.sip_bind == "0.0.0.0" and is_loopback(node.sip_bind):
        node.media_address = primary_ip()
    return node


# --- docker compose --profile edge ----------------------------------------------------------------------
def compose_node_count(base: StackConfig) -> int:
    """How many nodes the compose edge dispatches to: one per ``AIPBX_NODE_ADDRESSES`` entry, at least
    one (this host's Asterisk, on 127.0.0.2)."""
    return max(1, len(base.node_addresses))


def compose_node(base: StackConfig, index: int) -> StackConfig:
    """The compose deployment's Asterisk as node ``index`` (``AIPBX_NODE``) behind the edge.

    As :func:`node_config`, but each compose host runs one node: it keeps the deployment's HTTP and
    status ports, its whole RTP range and its ARI app name (the ARI app beside it does not change);
    its directories are the container's.
    """
    if not 1 <= index <= compose_node_count(base):
        raise SettingsError(
            f"AIPBX_NODE={index}: there are {compose_node_count(base)} node(s) "
            "(one per AIPBX_NODE_ADDRESSES entry, or node 1 alone)"
        )
    edge = (edge_node_side(base), base.sip_port)
    node = node_config(base, index, 1, edge, http_port=base.http_port, status_port=base.status_port)
    node = dataclasses.replace(node, ari_app=base.ari_app, var_dir=base.var_dir, cdr_dir=base.cdr_dir)
    return _lan_media(base, node)


def compose_edge(base: StackConfig, *, db_port: int, admin_conninfo: str) -> EdgeConfig:
    """The compose deployment's edge: its phones' SIP address and ports, every node of
    ``AIPBX_NODE_ADDRESSES`` (or this host's node 1) in its dispatcher, its database in compose's
    PostgreSQL, prepared as that server's owner (``admin_conninfo``)."""
    nodes = [compose_node(base, i) for i in range(1, compose_node_count(base) + 1)]
    edge = edge_config(base, nodes)
    edge.db_port = db_port
    edge.admin_conninfo = (admin_conninfo,)
    return edge


def check_placement(base: StackConfig, count: int) -> None:
    """Every node ``make up NODES=count`` would start is on this host.

    Raises:
        SettingsError: a node's address (``AIPBX_NODE_ADDRESSES``) is not one of this host's.
    """
    elsewhere = [f"{node.name} ({node.sip_bind})" for node in nodes_of(base, count) if not on_this_host(node.sip_bind)]
    if elsewhere:
        raise SettingsError(
            f"AIPBX_NODE_ADDRESSES: not an address of this host: {', '.join(elsewhere)}. `make up NODES=N` starts "
            "its nodes on this machine (loopback, or addresses of its own interfaces); starting a node on another "
            "host from here is not built yet (docs/scaling.md)"
        )


def up(base: StackConfig, count: int, env: dict[str, str]) -> list[tuple[StackConfig, object]]:
    """Start ``count`` nodes (Asterisk + ARI app each) and the edge; returns each node's (config, Asterisk)
    for the caller to wait for the apps. The console, workers and knowledge store are the caller's."""
    from stack import procs
    from stack.asterisk import Asterisk
    from stack.kamailio import Kamailio

    if count < 1:
        raise ValueError("NODES must be 1 or more")
    check_placement(base, count)
    nodes = nodes_of(base, count)
    base.var_dir.mkdir(parents=True, exist_ok=True)
    _nodes_file(base).write_text(str(count))
    started = []
    for node in nodes:
        asterisk = Asterisk(node)
        if not asterisk.running():
            print(
                f"starting Asterisk node {node.name} (SIP {node.sip_bind}:{node.sip_port}, "
                f"RTP {node.rtp_start}-{node.rtp_end}, ARI app {node.ari_app}) ...",
                flush=True,
            )
            asterisk.start()
        procs.start(node, procs.Service("ariapp", [*_python(), "-m", "ariapp"]), {**env, **node.process_env()})
        started.append((node, asterisk))
    edge = Kamailio(edge_config(base, nodes))
    if not edge.running():
        ports = f"port {edge.edge.port}" + (f", TLS port {edge.edge.tls_port}" if edge.edge.tls_port else "")
        print(f"starting the Kamailio edge (SIP {', '.join(edge.edge.listen)} {ports}) ...", flush=True)
        edge.start()
    return started


def _python() -> list[str]:
    import sys

    return [sys.executable]


def down(base: StackConfig) -> list[str]:
    """Stop the edge and every node ``up --nodes`` started; returns what was stopped."""
    from stack import procs
    from stack.asterisk import Asterisk
    from stack.kamailio import Kamailio

    count = running_nodes(base)
    if not count:
        return []
    stopped = []
    nodes = nodes_of(base, count)
    edge = Kamailio(edge_config(base, nodes))
    if edge.running():
        edge.stop()
        stopped.append("stopped the Kamailio edge")
    for node in nodes:
        if procs.stop(node, "ariapp"):
            stopped.append(f"stopped ariapp of {node.name}")
        asterisk = Asterisk(node)
        if asterisk.running():
            asterisk.stop()
            stopped.append(f"stopped Asterisk node {node.name}")
    _nodes_file(base).unlink(missing_ok=True)
    return stopped
