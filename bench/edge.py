"""What the Kamailio edge adds to call set-up (``python -m bench edge``; docs/scaling.md).

The same phone-to-phone call twice: 1001 calls 1002, which answers at once, and the caller times its
INVITE to the 200 OK. Once with both phones registered to a single Asterisk (phone -> Asterisk ->
phone), once registered to the edge in front of two nodes (phone -> Kamailio -> node -> Kamailio ->
phone: two more SIP hops, a digest challenge of the INVITE at the edge, a usrloc lookup). No recording
notice (it would dominate both), no ARI app (the callee answers). Calls run one after another so that
the figure is the path's, not the machine's queueing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from softphone import Phone
from stack.asterisk import Asterisk
from stack.cluster import edge_config
from stack.config import StackConfig
from stack.instance import scratch_config, scratch_nodes
from stack.kamailio import Kamailio, drop_database


def _config(base: Path, name: str) -> StackConfig:
    base.mkdir(parents=True)
    cfg = scratch_config(name, base, ring_seconds=10)
    cfg.directory = dataclasses.replace(cfg.directory, notice=())  # nothing played before it rings
    cfg.rtp_start, cfg.rtp_end = 30000, 39999
    return cfg


async def _setup_times(cfg: StackConfig, server: tuple[str, int], calls: int) -> list[float]:
    async with (
        Phone("1001", cfg.sip_password("1001"), server, "127.0.0.1") as caller,
        Phone("1002", cfg.sip_password("1002"), server, "127.0.0.1") as callee,
    ):
        await caller.register(expires=300)
        await callee.register(expires=300)

        async def answer_all() -> None:
            while True:
                incoming = await callee.next_incoming(timeout=None)
                await incoming.answer()

        answering = asyncio.create_task(answer_all())
        times = []
        try:
            for _ in range(calls + 3):  # the first three warm both paths up and are not counted
                started = time.perf_counter()
                call = await caller.call("1002", timeout=10)
                times.append((time.perf_counter() - started) * 1000)
                await call.hangup()
                await asyncio.sleep(0.1)
        finally:
            answering.cancel()
        return times[3:]


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "calls": len(times),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def run_edge(calls: int = 50) -> dict:
    """INVITE -> 200 OK of a phone-to-phone call, straight to one Asterisk and through the edge."""
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        # one Asterisk, phones registered to it
        single = _config(Path(tmp) / "single", f"bench{os.getpid()}")
        asterisk = Asterisk(single)
        asterisk.start()
        try:
            report["direct"] = _summary(asyncio.run(_setup_times(single, ("127.0.0.1", single.sip_port), calls)))
        finally:
            asterisk.stop()
        # the edge and two nodes, phones registered to the edge
        base = _config(Path(tmp) / "edge", f"benchedge{os.getpid()}")
        nodes, edge_port, lookup_port = scratch_nodes(base, 2)
        asterisks = [Asterisk(node) for node in nodes]
        edge = Kamailio(edge_config(base, nodes, port=edge_port, lookup_port=lookup_port))
        try:
            for node_asterisk in asterisks:
                node_asterisk.start()
            edge.start()
            time.sleep(2 * edge.edge.ping_interval)  # both nodes probed active
            report["through_edge"] = _summary(asyncio.run(_setup_times(base, edge.edge.address, calls)))
        finally:
            edge.stop()
            for node_asterisk in asterisks:
                node_asterisk.stop()
            drop_database(edge.edge)
    report["added_p50_ms"] = round(report["through_edge"]["p50_ms"] - report["direct"]["p50_ms"], 2)
    report["added_p95_ms"] = round(report["through_edge"]["p95_ms"] - report["direct"]["p95_ms"], 2)
    return report
