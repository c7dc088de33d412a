"""The shared voice's lane: one job at a time, the earliest needed first."""

from __future__ import annotations

import threading
import time

import pytest

from aipbx.providers.local.workers import DeadlineLane, pending

WAIT_S = 5.0  # generous: nothing here is timed, the waits only bound a broken lane


class Jobs:
    """Jobs that record their names as they start, in order; ``block`` holds a job until released."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.started: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}
        self.finished = threading.Semaphore(0)

    def job(self, name: str, block: bool = False):
        self.started[name] = threading.Event()
        self.release[name] = threading.Event()
        if not block:
            self.release[name].set()

        def run() -> None:
            self.ran.append(name)
            self.started[name].set()
            self.release[name].wait(WAIT_S)
            self.finished.release()

        return run

    def wait_finished(self, count: int) -> None:
        for _ in range(count):
            assert self.finished.acquire(timeout=WAIT_S), f"only {self.ran} ran"


def wait_idle(lane: DeadlineLane) -> None:
    """A finished job is given back (pending, idle) a moment after it returns."""
    deadline = time.monotonic() + WAIT_S
    while not lane.idle:
        assert time.monotonic() < deadline, "the lane never went idle"
        time.sleep(0.001)


def test_waiting_jobs_run_earliest_deadline_first_not_in_the_order_they_came() -> None:
    # given a lane whose one thread is busy
    lane, jobs = DeadlineLane("test-edf"), Jobs()
    lane.submit(jobs.job("busy", block=True), deadline=0.0)
    assert jobs.started["busy"].wait(WAIT_S)
    now = time.monotonic()
    # when: a later sentence of one call (needed in 3 s), then two callers' first sentences
    lane.submit(jobs.job("call A, sentence 2"), deadline=now + 3.0)
    lane.submit(jobs.job("call B, sentence 1"), deadline=now - 0.2)
    lane.submit(jobs.job("call C, sentence 1"), deadline=now - 0.1)
    assert pending("test-edf") == 4  # counted from submission, for the queue-time metric
    jobs.release["busy"].set()
    jobs.wait_finished(4)
    wait_idle(lane)
    # then: the callers waiting in silence first, in the order they stopped talking
    assert jobs.ran == ["busy", "call B, sentence 1", "call C, sentence 1", "call A, sentence 2"]
    assert pending("test-edf") == 0


def test_a_job_without_a_deadline_is_needed_now() -> None:
    lane, jobs = DeadlineLane("test-now"), Jobs()
    lane.submit(jobs.job("busy", block=True), deadline=0.0)
    assert jobs.started["busy"].wait(WAIT_S)
    lane.submit(jobs.job("later sentence"), deadline=time.monotonic() + 60.0)
    lane.submit(jobs.job("a hold message"))  # nobody said when: now, before the sentence due in a minute
    jobs.release["busy"].set()
    jobs.wait_finished(3)
    assert jobs.ran == ["busy", "a hold message", "later sentence"]


def test_a_failing_job_does_not_stop_the_lane(caplog: pytest.LogCaptureFixture) -> None:
    lane, jobs = DeadlineLane("test-fail"), Jobs()

    def broken() -> None:
        raise RuntimeError("model crashed")

    lane.submit(broken)
    lane.submit(jobs.job("next"))
    jobs.wait_finished(1)
    assert jobs.ran == ["next"]
    assert "job of lane test-fail failed" in caplog.text
    wait_idle(lane)
    assert pending("test-fail") == 0
