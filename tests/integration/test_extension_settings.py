"""Extension settings changed in the console reach the next call, over real SIP, with nothing restarted.

The stack here is its own (Asterisk, ARI app, instance ``testext<pid>``): it rings each extension for
its own timeout (the shared ``pbx`` fixture forces 2 s on every extension), and the directory it follows
is not the one the other tests' ARI app follows. The console's side is its action in this process
(``do_save_extension``: database row, audit row, publish to Redis after the commit), as the page does.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from django.test import override_settings

from softphone import Phone
from softphone.analysis import dominant_frequency
from softphone.errors import CallFailed, RegistrationFailed
from stack.asterisk import Asterisk
from stack.instance import AppProcess, scratch_config
from tests.integration.audio_checks import transcribe, until, until_greeting

pytestmark = [pytest.mark.asterisk, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import redis
    from django.conf import settings

    from contract.directory import directory_key

    cfg = scratch_config(f"testext{os.getpid()}", tmp_path_factory.mktemp("ext"), ring_seconds=None)
    asterisk = Asterisk(cfg)
    asterisk.start()
    app = AppProcess(cfg, {"AIPBX_KNOWLEDGE_STORE": "none", "AIPBX_HITL": "0"})
    try:
        app.start()
        yield cfg, asterisk, app
    finally:
        app.stop()
        asterisk.stop()
        redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL).delete(directory_key(cfg.instance))


async def save(cfg, number: str, **values):
    """What the console's form does (in a thread: the ORM is synchronous)."""

    def run():
        from django.db import connection

        try:
            return _save(cfg, number, **values)
        finally:
            connection.close()  # the thread's own connection: the test database must be droppable

    return await asyncio.to_thread(run)


def _save(cfg, number: str, **values):
    """The row, its audit row, the publish after the commit."""
    from webconsole.calls import actions
    from webconsole.calls.models import Extension

    with override_settings(AIPBX_INSTANCE=cfg.instance):
        row = Extension.objects.filter(number=number).first()
        created = row is None
        if created:
            row = Extension(number=number, sip_password=values.pop("sip_password"))
        change = actions.do_save_extension(None, row, values, created=created)
    assert change is not None
    return row


def applied(asterisk: Asterisk, number: str) -> str:
    """The dialplan global Asterisk holds for ``number`` now."""
    try:
        return asterisk.ari_get(f"/ari/asterisk/variable?variable=AIPBX_EXT_{number}")["value"]
    except Exception:  # noqa: BLE001 - not set yet
        return ""


def phone(cfg, ext: str, password: str | None = None) -> Phone:
    return Phone(
        ext=ext,
        password=password or cfg.sip_password(ext),
        server=("127.0.0.1", cfg.sip_port),
        local_ip="127.0.0.1",
    )


async def online(asterisk: Asterisk, ext: str) -> None:
    await until(
        lambda: asterisk.ari_get(f"/ari/deviceStates/PJSIP%2F{ext}")["state"] != "UNAVAILABLE", 5, f"{ext} online"
    )


async def test_a_new_greeting_and_timeout_apply_to_the_next_call(stack):
    cfg, asterisk, app = stack
    # given 1002 rings 10 s (the seed) and greets with the seed's greeting
    pid = app.proc.pid
    # when the console changes its greeting and its no-answer timeout
    await save(
        cfg,
        "1002",
        no_answer_timeout=4,
        greeting="Welcome to the blue team of {owner}. This call is recorded. What do you need?",
    )
    await until(lambda: applied(asterisk, "1002").startswith("4/"), 10, "the new timeout in Asterisk")
    async with phone(cfg, "1001") as caller, phone(cfg, "1002") as callee:
        await caller.register(expires=120)
        await callee.register(expires=120)
        await online(asterisk, "1002")
        call = await caller.dial("1002")
        await callee.next_incoming(timeout=15)
        started = time.monotonic()
        await asyncio.wait_for(call.answered(), 15)
        rang = time.monotonic() - started
        # then the AI answers after the new timeout (not the seed's 10 s) with the new greeting
        print(f"rang {rang:.2f} s with a 4 s no-answer timeout (seed: 10 s)")
        assert 3.5 <= rang < 7.5, rang
        await until_greeting(call, 3.0, 20)
        await asyncio.sleep(3.0)
        heard = await transcribe(call.received_audio())
        assert "blue" in heard and "team" in heard, heard
        await call.hangup()
    assert app.proc.pid == pid and app.proc.poll() is None  # nothing restarted


async def test_ai_off_the_unanswered_call_is_not_handed_to_the_ai(stack):
    cfg, asterisk, app = stack
    # given the console turns the AI off for 1003 and shortens its ring
    await save(cfg, "1003", ai_enabled=False, no_answer_timeout=2)
    await until(lambda: applied(asterisk, "1003") == "2/learn/recording-notice-en-US/0", 10, "AI off in Asterisk")
    async with phone(cfg, "1001") as caller, phone(cfg, "1003") as callee:
        await caller.register(expires=120)
        await callee.register(expires=120)
        await online(asterisk, "1003")
        # when 1003 rings and nobody answers
        call = await caller.dial("1003")
        await callee.next_incoming(timeout=15)
        # then the call fails after the ring (no answer), and no AI session was started
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(call.answered(), 12)
        assert failed.value.status in (408, 480, 486, 503), failed.value
        assert call.answered_at is None
    assert app.status()["ai_sessions"] == 0
    # and turning it back on hands the next unanswered call to the AI again
    await save(cfg, "1003", ai_enabled=True)
    await until(lambda: applied(asterisk, "1003").endswith("/1"), 10, "AI on in Asterisk")
    async with phone(cfg, "1001") as caller, phone(cfg, "1003") as callee:
        await caller.register(expires=120)
        await callee.register(expires=120)
        await online(asterisk, "1003")
        call = await caller.dial("1003")
        await callee.next_incoming(timeout=15)
        await asyncio.wait_for(call.answered(), 12)
        # (once in ~35 calls this failed: the test phone refused Asterisk's early-dialog UPDATE, sent as
        # the AI answers, with 481, and Asterisk hung up with cause 127; softphone/outgoing.py)
        await until_greeting(call, 1.0, 20)
        await call.hangup()


async def test_an_extension_added_in_the_console_registers_and_takes_a_call_at_once(stack):
    cfg, asterisk, app = stack
    password = "Zq8-new-extension-pw_1"
    # given no extension 1077
    async with phone(cfg, "1077", password) as newcomer:
        with pytest.raises(RegistrationFailed):
            await newcomer.register(expires=120)
    # when the console adds it
    started = time.monotonic()
    await save(cfg, "1077", name="New Desk", sip_password=password)

    # then its phone registers within seconds (no reload, no restart)
    async def registers() -> bool:
        async with phone(cfg, "1077", password) as p:
            try:
                await p.register(expires=60)
            except RegistrationFailed:
                return False
            await p.unregister()
            return True

    deadline = time.monotonic() + 10
    while not await registers():
        assert time.monotonic() < deadline, "1077 could not register 10 s after it was added"
        await asyncio.sleep(0.5)
    took = time.monotonic() - started
    # and it receives a call from another phone
    async with phone(cfg, "1001") as caller, phone(cfg, "1077", password) as desk:
        await caller.register(expires=120)
        await desk.register(expires=120)
        await online(asterisk, "1077")
        call = await caller.dial("1077")
        incoming = await desk.next_incoming(timeout=10)
        answered = await incoming.answer()
        await asyncio.wait_for(call.answered(), 5)
        call.play_tone(440, 1.0)
        await asyncio.sleep(1.5)
        assert abs(dominant_frequency(answered.received_audio()) - 440) < 15
        await call.hangup()
    print(f"new extension registrable {took:.1f} s after it was saved")
    assert took < 10
