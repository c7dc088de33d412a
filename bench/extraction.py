"""Post-call extraction throughput of one Celery worker with the offline judge (``run_extraction_bench``).

What is measured: one real ``celery -A webconsole worker --pool=solo`` process
(one worker = one task at a time) runs ``extract_knowledge_task`` for
``transcripts`` recorded calls queued at once through Redis: the real task code
(the call's turns read from PostgreSQL, where the console's event consumer stored them; owner check,
:class:`RuleJudge`, 500/50 chunking, USE embeddings, duplicate merge under the owner's advisory lock,
PostgreSQL writes).
The rate is taken from the runs' own timestamps in PostgreSQL (first run created
to last run finished), after one warm-up call that loads the embedding model,
so worker start-up is not counted.

Corpus: synthetic AI-handled calls to four owners, each with 2-3 fact-bearing
caller sentences (times, places, numbers, instructions) among small talk;
numbers vary per call so most facts are new (duplicates are merged, as in
production). The database is a throwaway one (``aipbx_bench_<random>``) on the
configured PostgreSQL server, dropped at the end; the vector index is the
in-memory one (pending items are not indexed anyway).

Run alone with ``python -m bench.extraction [transcripts]``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aipbx.queues import worker_queues
from bench.db import throwaway_database

REPO_ROOT = Path(__file__).resolve().parents[1]
OWNERS = ("1001", "1002", "1003", "1004")
_FACTS = (
    "The delivery will arrive on {day} at {hour} a.m. at the lobby of building {n}.",
    "Please call me back at 010-{a}-{b} before {hour} p.m.",
    "The meeting moved to room {n}0{m} on the {m}th floor on {day}.",
    "My order number is {a}{b} and the invoice is due on {day}.",
    "내일 오후 {hour}시에 {n}층 회의실에서 미팅이 있어요.",
    "비밀번호는 {a}입니다 다음 주 {day_ko}까지 변경해 주세요.",
)
_SMALL_TALK = (
    "Hi, this is {name} from Acme.",
    "Thanks a lot, have a nice day.",
    "안녕하세요 잘 지내시죠.",
    "Sorry to bother you.",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_DAYS_KO = ("월요일", "화요일", "수요일", "목요일", "금요일")


def synthetic_call(index: int, rng: random.Random) -> dict[str, Any]:
    """One AI-handled call: its CDR (``call``) and ``turns``, as in the recorder's ``metadata.json``."""
    values = {
        "day": rng.choice(_DAYS),
        "day_ko": rng.choice(_DAYS_KO),
        "hour": rng.randint(1, 11),
        "n": rng.randint(1, 9),
        "m": rng.randint(1, 9),
        "a": rng.randint(1000, 9999),
        "b": rng.randint(1000, 9999),
        "name": rng.choice(("Alex", "Sam", "Jordan")),
    }
    facts = [f.format(**values) for f in rng.sample(_FACTS, rng.randint(2, 3))]
    said = " ".join([rng.choice(_SMALL_TALK).format(**values), *facts, rng.choice(_SMALL_TALK).format(**values)])
    turns = [
        {"t": 0.0, "speaker": "ai", "text": "Hello, this is the AI assistant. How can I help you?"},
        {"t": 4.0, "speaker": "caller", "text": said},
        {"t": 20.0, "speaker": "ai", "text": "Thank you, I will pass this on."},
    ]
    call = {"call_id": f"bench-{index}", "caller": "5551234", "callee": OWNERS[index % len(OWNERS)], "billsec": 25.0}
    return {"call": call, "turns": turns}


def store_call(call: dict[str, Any]) -> None:
    """Store ``call`` as the console's event consumer does: the events the ARI app publishes for it."""
    from contract import CallAnswered, CallEnded, CallStarted, Envelope, Transcript, TurnPlayed, encode
    from webconsole.calls.ingest import apply_event

    cdr = {**call["call"], "start": "2026-11-25T01:00:00+00:00", "ai_handled": True}
    events = [CallStarted(caller=cdr["caller"], callee=cdr["callee"], start=cdr["start"]), CallAnswered("ai", True)]
    for turn in call["turns"]:
        if turn["speaker"] == "ai":
            events.append(TurnPlayed(t=turn["t"], speaker="ai", text=turn["text"]))
        else:
            events.append(Transcript(speaker=turn["speaker"], text=turn["text"], final=True, t=turn["t"]))
    events.append(CallEnded(cdr=cdr, turns=len(call["turns"])))
    for event in events:
        apply_event(encode(Envelope.of(event, cdr["call_id"])))


def run_extraction_bench(transcripts: int = 200, *, timeout_s: float = 600.0) -> dict[str, Any]:
    """Transcripts per minute of one solo worker (see the module docstring)."""
    with throwaway_database() as bench_url:
        return _run(bench_url, transcripts, timeout_s)


def _run(bench_url: str, transcripts: int, timeout_s: float) -> dict[str, Any]:
    recordings = Path(tempfile.mkdtemp(prefix="aipbx-bench-recordings-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        "AIPBX_DATABASE_URL": bench_url,
        "AIPBX_RECORDINGS_DIR": str(recordings),
        "AIPBX_KNOWLEDGE_STORE": "memory",
        "AIPBX_LLM": "local",
        "AIPBX_KNOWLEDGE_JUDGE": "rule",
    }
    worker = None
    try:
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from knowledge.models import ExtractionRun, KnowledgeItem
        from knowledge.tasks import extract_knowledge_task
        from webconsole.celery import app

        call_command("migrate", verbosity=0)
        rng = random.Random(4)
        for index in range(transcripts + 1):
            store_call(synthetic_call(index, rng))
        queue = ",".join(worker_queues(app.conf.task_default_queue))  # extraction runs on the long queue
        node = f"bench-extraction-{uuid.uuid4().hex[:8]}@localhost"
        with (recordings / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [
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
                    node,
                    "--loglevel=warning",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=REPO_ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[node], timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start: see {recordings / 'worker.log'}")
        # warm-up: the first task loads the embedding model
        extract_knowledge_task.delay(f"bench-{transcripts}").get(timeout=120)
        results = [extract_knowledge_task.delay(f"bench-{i}") for i in range(transcripts)]
        summaries = [r.get(timeout=timeout_s) for r in results]
        runs = ExtractionRun.objects.filter(call_id__in=[f"bench-{i}" for i in range(transcripts)])
        first = min(run.created for run in runs)
        last = max(run.finished for run in runs if run.finished)
        span = (last - first).total_seconds()
        statuses: dict[str, int] = {}
        for summary in summaries:
            statuses[summary["status"]] = statuses.get(summary["status"], 0) + 1
        report = {
            "what": "extract_knowledge_task on one solo Celery worker, RuleJudge, USE embeddings, PostgreSQL",
            "transcripts": transcripts,
            "seconds": round(span, 2),
            "transcripts_per_minute_per_worker": round(transcripts * 60 / span, 1),
            "ms_per_transcript": round(span * 1000 / transcripts, 1),
            "runs": statuses,
            "items_created": sum(s["items_created"] for s in summaries),
            "items_in_db": KnowledgeItem.objects.count(),
        }
        connections.close_all()
        return report
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        shutil.rmtree(recordings, ignore_errors=True)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    json.dump(run_extraction_bench(count), sys.stdout, indent=2, ensure_ascii=False)
    print()
