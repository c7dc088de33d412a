"""Suite-wide options.

``AIPBX_TEST_NOW`` (an ISO instant, e.g. ``2027-12-31T23:59:30+00:00``) runs the suite's own process
with its wall clock moved to that instant and ticking from there (``time-machine``; the monotonic
clock is untouched, so timeouts and pacing behave). It is how the suite proves it does not depend on
today's date, on midnight or on the time zone::

    AIPBX_TEST_NOW=2027-12-31T23:59:30+00:00 TZ=Asia/Seoul make test PYTEST_ARGS="tests/web tests/unit"

Processes the tests start (Asterisk, Celery workers, Daphne) keep the real clock; tests whose
assertions compare the two are those that must not care about the date in the first place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

_TRAVEL = None


def pytest_configure(config: pytest.Config) -> None:
    global _TRAVEL
    # The console's translations are generated files: every session compiles the stale ones first
    # (Daphne and the workers the tests start read the same locale folder).
    from stack.catalogs import compile_all

    compile_all()
    instant = os.environ.get("AIPBX_TEST_NOW", "").strip()
    if not instant:
        return
    import time_machine

    when = datetime.fromisoformat(instant)
    if when.tzinfo is None:
        raise pytest.UsageError(f"AIPBX_TEST_NOW needs a UTC offset, e.g. {instant}+00:00")
    _TRAVEL = time_machine.travel(when, tick=True)
    _TRAVEL.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _TRAVEL is not None:
        _TRAVEL.stop()
    _remove_session_redis_user()


def _remove_session_redis_user() -> None:
    """The Redis user webconsole.settings.test made for this session goes with it (on a shared Redis)."""
    user = os.environ.get("AIPBX_TEST_REDIS_USER", "")
    if not user.startswith(f"aipbx-test-{os.getpid()}-"):  # made by the session, not inherited
        return
    import redis

    from stack.redis_acl import remove_user, without_credentials

    try:
        remove_user(without_credentials(os.environ["AIPBX_REDIS_URL"]), user)
    except (redis.RedisError, OSError):  # left behind: the next session removes users of dead sessions
        pass


def pytest_report_header(config: pytest.Config) -> str | None:
    instant = os.environ.get("AIPBX_TEST_NOW", "").strip()
    return f"wall clock moved to {instant} (AIPBX_TEST_NOW)" if instant else None


# --- a wall clock moved to the instants where date bugs live ------------------------------------
#: Instants at which "today", "this week" and local-day buckets are most easily wrong: just after
#: midnight in Seoul (the console's zone; still the previous day in UTC), just before and just after
#: midnight UTC, and a year after today (nothing may depend on the date the test was written).
CLOCK_EDGES = {
    "seoul-00:30": datetime(2027, 6, 30, 15, 30, tzinfo=UTC),
    "utc-23:59": datetime(2027, 12, 31, 23, 59, 30, tzinfo=UTC),
    "utc-00:01": datetime(2028, 1, 1, 0, 1, tzinfo=UTC),
    "a-year-ahead": None,  # the real now + 365 days
}


@pytest.fixture(params=list(CLOCK_EDGES), ids=list(CLOCK_EDGES))
def moved_clock(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """The test runs with its wall clock at each of :data:`CLOCK_EDGES` in turn, ticking from there."""
    import time_machine

    instant = CLOCK_EDGES[request.param] or datetime.now(UTC) + timedelta(days=365)
    with time_machine.travel(instant, tick=True):
        yield instant
