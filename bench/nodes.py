"""AI conversations on one node, and on two behind the Kamailio edge (``python -m bench nodes``).

The load bench's callers (``bench/load.py``: N calls from one phone to the clinic on 1004, all
greeted, then one question each, asked ``--spacing`` apart, every answer synthesised for the first
time by a freshly started ARI app) — first on one node (Asterisk + ARI app) at N/2 and at N, then
through a Kamailio edge in front of two nodes (each its own Asterisk and ARI app on its own loopback
address, sharing the knowledge store) at N. Per step: the answer latency at the phone p50/p95, the
unanswered count, and through the edge the calls each node took (its CDR lines).

Twice: with the ARI apps on any core, and with each node's ARI app on a core of its own (the single
node on one core too), as if each node were a host of its own; Asterisk, the edge and the phone run
on any core both times.

The figure issue 18 asks for: the largest N at which two nodes answer with the p95 one node has at
N/2 (within 10 %). On one machine without pinning the two nodes share its cores, so that run says
what a second node costs or gives on the same host; the pinned run, what a second host gives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from bench.load import APP_ENV, QUESTIONS, _run_step, _step
from bench.quality import _cdr_lines, _questions, _seed
from stack.instance import AppProcess, Instance, scratch_nodes

#: Two nodes hold N "at the same latency" as one node holds N/2: their p95 is at most this much higher.
SAME_LATENCY = 1.10


def _edge_step(apps: list[AppProcess], edge_cfg, count: int, spacing_s: float, questions: list) -> dict:
    """One step through the edge, on freshly started node apps (nothing in their reply caches)."""
    for app in apps:
        app.stop()
    for app in apps:
        app.start()
    before = [len(_cdr_lines(app.cfg)) for app in apps]
    step = asyncio.run(_step(edge_cfg, count, spacing_s, questions))
    time.sleep(2.0)  # the calls' CDR lines are written right after their hang-up
    step["calls_per_node"] = [len(_cdr_lines(app.cfg)) - b for app, b in zip(apps, before, strict=True)]
    return step


def _p95(step: dict) -> float | None:
    latency = step.get("latency_ms")
    return None if not latency or step["unanswered"] else latency["p95"]


def run_nodes(steps: tuple[int, ...] = (10, 20), spacing_s: float = 0.5) -> dict:
    """Both ways of measuring (the module docstring): the ARI apps on any core, then one core each."""
    return {
        "any_core": _run_nodes(steps, spacing_s, pinned=False),
        "one_core_per_node": _run_nodes(steps, spacing_s, pinned=True),
    }


def _run_nodes(steps: tuple[int, ...], spacing_s: float, pinned: bool) -> dict:
    """One node at N/2 and N, two nodes behind the edge at N, for each N of ``steps``; ``pinned``: each
    node's ARI app on a core of its own (the single node on the first), as if each were a host."""
    from bench.transcripts import live_config
    from softphone.voice import speech
    from stack.asterisk import Asterisk
    from stack.cluster import edge_config
    from stack.kamailio import Kamailio, drop_database

    kb = _questions(0, 0)[0]["items"]
    questions = [asyncio.run(speech(text)) for text in QUESTIONS]
    out: dict = {"spacing_s": spacing_s, "one_node": {}, "two_nodes_through_edge": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = live_config(f"bnodes{os.getpid()}", Path(tmp), 1, shipped=True, live_calls=1)
        with Instance(cfg, APP_ENV) as instance:
            if pinned:
                instance.app.cpus = frozenset({0})
            asyncio.run(_seed(cfg, kb))
            for count in sorted({n // 2 for n in steps} | set(steps)):
                out["one_node"][str(count)] = _run_step(instance, count, spacing_s, questions, 0, [])
                print(f"one node (pinned: {pinned}), {count} calls: {out['one_node'][str(count)]}", flush=True)
                time.sleep(3.0)
            instance.app.stop()

            nodes, edge_port, lookup_port = scratch_nodes(cfg, 2)
            asterisks = [Asterisk(node) for node in nodes]
            apps = [
                AppProcess(node, APP_ENV, frozenset({index}) if pinned else None) for index, node in enumerate(nodes)
            ]
            edge = Kamailio(edge_config(cfg, nodes, port=edge_port, lookup_port=lookup_port, tls_port=0))
            try:
                for asterisk in asterisks:
                    asterisk.start()
                edge.start()
                time.sleep(2 * edge.edge.ping_interval)  # both nodes probed active
                edge_cfg = dataclasses.replace(cfg, sip_port=edge_port)  # the phone registers at the edge
                for count in steps:
                    step = _edge_step(apps, edge_cfg, count, spacing_s, questions)
                    out["two_nodes_through_edge"][str(count)] = step
                    print(f"two nodes through the edge (pinned: {pinned}), {count} calls: {step}", flush=True)
                    time.sleep(3.0)
            finally:
                for app in apps:
                    app.stop()
                edge.stop()
                for asterisk in asterisks:
                    asterisk.stop()
                drop_database(edge.edge)
    held = [
        n
        for n in steps
        if (two := _p95(out["two_nodes_through_edge"][str(n)])) is not None
        and (one := _p95(out["one_node"][str(n // 2)])) is not None
        and two <= SAME_LATENCY * one
    ]
    out["largest_n_two_nodes_hold_at_one_node_latency_of_n_half"] = max(held) if held else None
    return out
