"""The shared voice's lane: earliest-needed first, overflow threads only while the main one is busy."""

from __future__ import annotations

import threading
import time

import pytest

from ariapp.providers.local.workers import DeadlineLane, pending

WAIT_S = 5.0  # generous: nothing here is timed, the waits only bound a broken lane


class Jobs:
    """Jobs that record which slot ran them, in order; ``block`` holds a job until released."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []
        self.started: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}
        self.finished = threading.Semaphore(0)

    def job(self, name: str, block: bool = False):
        self.started[name] = threading.Event()
        self.release[name] = threading.Event()
        if not block:
            self.release[name].set()

        def run(slot: int) -> None:
            self.ran.append((name, slot))
            self.started[name].set()
            self.release[name].wait(WAIT_S)
            self.finished.release()

        return run

    def wait_finished(self, count: int) -> None:
        for _ in range(count):
            assert self.finished.acquire(timeout=WAIT_S), f"only {self.ran} ran"


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
    # then: the callers waiting in silence first, in the order they stopped talking
    assert [name for name, _ in jobs.ran] == ["busy", "call B, sentence 1", "call C, sentence 1", "call A, sentence 2"]
    assert pending("test-edf") == 0


def test_a_job_without_a_deadline_is_needed_now() -> None:
    lane, jobs = DeadlineLane("test-now"), Jobs()
    lane.submit(jobs.job("busy", block=True), deadline=0.0)
    assert jobs.started["busy"].wait(WAIT_S)
    lane.submit(jobs.job("later sentence"), deadline=time.monotonic() + 2.0)
    lane.submit(jobs.job("a hold message"))  # nobody said when: now, before the sentence due in 2 s
    jobs.release["busy"].set()
    jobs.wait_finished(3)
    assert [name for name, _ in jobs.ran] == ["busy", "a hold message", "later sentence"]


def test_overflow_threads_take_jobs_only_while_the_main_one_is_busy() -> None:
    lane, jobs = DeadlineLane("test-overflow", overflow=1), Jobs()
    # a lone job runs on the main thread (all cores: the fastest for one caller)
    lane.submit(jobs.job("alone"))
    jobs.wait_finished(1)
    assert jobs.ran == [("alone", 0)]
    # while the main thread is busy, the next job does not wait: the overflow thread takes it
    lane.submit(jobs.job("long", block=True))
    assert jobs.started["long"].wait(WAIT_S)
    lane.submit(jobs.job("next"))
    assert jobs.started["next"].wait(WAIT_S)
    assert ("long", 0) in jobs.ran and ("next", 1) in jobs.ran
    jobs.release["long"].set()
    jobs.wait_finished(2)
    deadline = time.monotonic() + WAIT_S
    while not lane.idle:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # and once the main thread is free again, it is the one that runs a job
    lane.submit(jobs.job("after"))
    jobs.wait_finished(1)
    assert jobs.ran[-1] == ("after", 0)


def test_a_failing_job_does_not_stop_the_lane(caplog: pytest.LogCaptureFixture) -> None:
    lane, jobs = DeadlineLane("test-fail"), Jobs()

    def broken(slot: int) -> None:
        raise RuntimeError("model crashed")

    lane.submit(broken)
    lane.submit(jobs.job("next"))
    jobs.wait_finished(1)
    assert jobs.ran == [("next", 0)]
    assert "job of lane test-fail failed" in caplog.text
    assert pending("test-fail") == 0
