"""Media-plane benchmarks measured at the phone, through the real Asterisk.

pacing       the AI's outbound RTP as the caller's phone receives it: inter-arrival p50/p99/max and
             the largest burst, for 1 and 50 concurrent AI calls (target p99 within 20 +/- 2 ms).
concurrency  N concurrent AI calls with the whole media plane active (greeting, then the caller's
             audio echoed back through jitter buffer, VAD and recording): packets lost at the
             phones, inter-arrival p99, CPU of the ARI app and Asterisk; the largest N with 0 lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from aipbx import sealing
from stack.instance import Instance, scratch_config

AI_EXTENSION = "1004"  # not registered: the AI answers at once
BURST_GAP_S = 0.002  # packets closer than this arrived as one burst


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _asterisk_pid(instance: Instance) -> int | None:
    try:
        return int((instance.cfg.run_dir / "asterisk.pid").read_text())
    except (OSError, ValueError):
        return None


def interval_stats(arrivals: list[np.ndarray]) -> dict:
    """Inter-arrival statistics over several calls' packet arrival times (seconds)."""
    gaps = np.concatenate([np.diff(a) for a in arrivals if len(a) > 1]) * 1000.0
    bursts = []
    for a in arrivals:
        run = best = 1
        for gap in np.diff(a):
            run = run + 1 if gap < BURST_GAP_S else 1
            best = max(best, run)
        bursts.append(best)
    return {
        "packets": int(sum(len(a) for a in arrivals)),
        "interval_ms_p50": round(float(np.percentile(gaps, 50)), 2),
        "interval_ms_p99": round(float(np.percentile(gaps, 99)), 2),
        "interval_ms_p1": round(float(np.percentile(gaps, 1)), 2),
        "interval_ms_max": round(float(gaps.max()), 2),
        "max_burst_packets": int(max(bursts)),
    }


# Echo mode; every call comes from one phone (1001), up to 150 at once: no AI call caps here.
BENCH_APP_ENV = {"AIPBX_BENCH_ECHO": "1", "AIPBX_MAX_AI_CALLS": "0", "AIPBX_MAX_AI_CALLS_PER_CALLER": "0"}


def lost_packets(sequences: np.ndarray) -> int:
    """Packets missing from one RTP stream, from its sequence numbers (handles wrap-around)."""
    if len(sequences) < 2:
        return 0
    unwrapped = np.concatenate([[0], np.cumsum(((np.diff(sequences.astype(np.int64)) + 32768) % 65536) - 32768)])
    expected = int(unwrapped.max() - unwrapped.min() + 1)
    return expected - len(np.unique(unwrapped))


async def _calls(instance: Instance, count: int, seconds: float, talk: np.ndarray | None, status_of=None) -> list:
    """Place ``count`` concurrent calls to the AI, hold them ``seconds``, return their rx packets."""
    from softphone import Phone

    cfg = instance.cfg
    phone = Phone(
        ext="1001", password=cfg.sip_password("1001"), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1"
    )
    await phone.start()
    await phone.register(expires=300)
    try:
        calls = []
        for _ in range(count):  # a steady ramp: 20 call set-ups per second
            calls.append(asyncio.ensure_future(phone.call(AI_EXTENSION, timeout=20)))
            await asyncio.sleep(0.05)
        established = await asyncio.gather(*calls)
        if talk is not None:
            for call in established:
                call.play(np.tile(talk, int(seconds / (len(talk) / 8000)) + 1))
        await asyncio.sleep(seconds)
        if status_of is not None:  # the app's clock figures while every call is still up
            _calls.last_status = await asyncio.to_thread(status_of.status)
        results = [(c.answered_at, list(c.rx_packets)) for c in established]
        await asyncio.gather(*(c.hangup() for c in established), return_exceptions=True)
        return results
    finally:
        await phone.unregister()
        await phone.close()


def _settled(results: list, skip_s: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Arrival times and sequence numbers after the first ``skip_s`` of each call."""
    arrivals, sequences = [], []
    for answered_at, packets in results:
        kept = [p for p in packets if p[0] >= answered_at + skip_s]
        arrivals.append(np.array([p[0] for p in kept]))
        sequences.append(np.array([p[1] for p in kept], dtype=np.int64))
    return arrivals, sequences


def _inbound_stats(recordings: Path, since: float, keys: sealing.Keyring | None) -> dict:
    """What the ARI app's jitter buffers saw of the phones' audio, from the calls' metadata.json."""
    totals = {"calls": 0, "received": 0, "concealed": 0, "late": 0, "dropped_overflow": 0, "underruns": 0}
    for folder in recordings.iterdir():
        if not sealing.exists(folder, "metadata.json") or folder.stat().st_mtime < since:
            continue
        jitter = json.loads(sealing.read_text(folder, "metadata.json", keys)).get("jitter") or {}
        totals["calls"] += 1
        for key in totals.keys() - {"calls"}:
            totals[key] += int(jitter.get(key, 0))
    return totals


def run_pacing(call_counts=(1, 50), seconds: float = 12.0) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bench{os.getpid()}", Path(tmp))
        with Instance(cfg, BENCH_APP_ENV) as instance:
            for count in call_counts:
                results = asyncio.run(_calls(instance, count, seconds, None))
                arrivals, _ = _settled(results, 1.0)
                out[f"{count}_calls"] = {
                    **interval_stats(arrivals),
                    "sender_clock_ms": instance.app.status()["clock_interval_ms"],
                }
                time.sleep(2.0)
    return out


def run_concurrency(steps=(50, 100, 150), seconds: float = 20.0) -> dict:
    from bench.speech import talk_loop

    talk = talk_loop()
    out: dict = {"steps": {}}
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bench{os.getpid()}", Path(tmp))
        with Instance(cfg, BENCH_APP_ENV) as instance:
            app_pid, ast_pid = instance.app.proc.pid, _asterisk_pid(instance)
            for count in steps:
                cpu0 = (_cpu_seconds(app_pid), _cpu_seconds(ast_pid) if ast_pid else 0.0)
                started, step_wall_start = time.monotonic(), time.time()
                results = asyncio.run(_calls(instance, count, seconds, talk, status_of=instance.app))
                wall = time.monotonic() - started
                cpu1 = (_cpu_seconds(app_pid), _cpu_seconds(ast_pid) if ast_pid else 0.0)
                arrivals, sequences = _settled(results, 1.0)
                lost = sum(lost_packets(s) for s in sequences)
                status = _calls.last_status
                time.sleep(2.0)  # calls' metadata is written right after their hang-up
                step = {
                    **interval_stats(arrivals),
                    "lost_packets": lost,
                    "ariapp_cpu_percent_of_core": round(100 * (cpu1[0] - cpu0[0]) / wall, 1),
                    "asterisk_cpu_percent_of_core": round(100 * (cpu1[1] - cpu0[1]) / wall, 1),
                    "clock_late_ticks_total": status["clock_late_ticks"],
                    "sender_clock_ms": status["clock_interval_ms"],
                    "ariapp_inbound": _inbound_stats(cfg.recordings_dir, step_wall_start, cfg.recordings_keys),
                }
                out["steps"][str(count)] = step
                if lost == 0:
                    best = count
                else:
                    break
                time.sleep(3.0)
    out["max_calls_zero_loss"] = best
    return out
