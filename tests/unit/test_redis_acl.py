"""Redis with authentication: the stack's users (stack/redis_acl.py) on the real Redis, and a Redis set
up like compose.yaml's, which refuses a client without credentials.

What callers hear passes through Redis (HITL replies, ``aipbx:<instance>:hitl:*``): a local process
that is not the stack must not be able to push one.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contract import hitl_reply_key, stream_name
from stack.container import environment
from stack.instance import free_port, scratch_config
from stack.redis_acl import acl_file, credentials, remove_user, set_user, user_name, with_credentials

SYSTEM_REDIS = "redis://127.0.0.1:6379/0"  # its default user is open (CI, development): the admin login here


def anonymous(port: int, **kwargs) -> redis.Redis:
    """A client that tries once (redis-py retries a refused connection with backoff by default)."""
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0), **kwargs)


@pytest.fixture
def instance_user() -> Iterator[tuple[str, str]]:
    """``(instance, authenticated URL)`` of an instance user made on the system Redis, removed afterwards."""
    instance, password = f"testacl{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    set_user(SYSTEM_REDIS, user_name(instance), password, instance)
    yield instance, with_credentials(SYSTEM_REDIS, user_name(instance), password)
    remove_user(SYSTEM_REDIS, user_name(instance))


def test_an_instance_user_reaches_its_own_keys_and_no_other_instances(instance_user) -> None:
    instance, url = instance_user
    other = f"testacl{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    try:
        # given the instance's user, it may answer its own callers
        assert client.acl_whoami() == user_name(instance)
        client.rpush(hitl_reply_key(instance, "r1"), '{"kind": "answer"}')
        client.xadd(stream_name(instance), {"event": "{}"})
        # when it tries another instance's reply list, a dangerous command, or a wrong password: refused
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.rpush(hitl_reply_key(other, "r1"), '{"kind": "answer"}')
        for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "requirepass"), ("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(with_credentials(url, user_name(instance), "not-the-password")).ping()
    finally:
        client.delete(hitl_reply_key(instance, "r1"), stream_name(instance))
        client.close()


def test_a_removed_instance_user_can_no_longer_log_in() -> None:
    instance, password = f"testacl{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    set_user(SYSTEM_REDIS, user_name(instance), password, instance)
    assert remove_user(SYSTEM_REDIS, user_name(instance))
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(with_credentials(SYSTEM_REDIS, user_name(instance), password)).ping()


def test_the_suite_talks_to_redis_as_its_own_user() -> None:
    import os

    from django.conf import settings

    user = os.environ["AIPBX_TEST_REDIS_USER"]
    for url in (settings.AIPBX_REDIS_URL, settings.AIPBX_EVENTS_REDIS_URL, settings.CELERY_BROKER_URL):
        assert credentials(url)[0] == user
        with redis.Redis.from_url(url) as client:
            assert client.acl_whoami() == user
    assert os.environ["AIPBX_REDIS_URL"].startswith(f"redis://{user}:")  # what the session's processes inherit


def test_make_up_gives_its_processes_the_instance_user(tmp_path: Path) -> None:
    cfg = scratch_config("dev1", tmp_path)
    assert "AIPBX_REDIS_URL" not in cfg.process_env()  # a test instance: the session's own URL is inherited
    cfg.redis_url = SYSTEM_REDIS
    assert credentials(cfg.process_env()["AIPBX_REDIS_URL"]) == ("aipbx-dev1", cfg.secrets["AIPBX_REDIS_PASSWORD"])


# --- a Redis set up like compose.yaml's ----------------------------------------------------------------
@pytest.fixture
def compose_like_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """``redis-server --aclfile`` with the file ``stack.container setup`` writes; yields ``(port, password)``."""
    password, port = uuid.uuid4().hex, free_port()
    (tmp_path / "users.acl").write_text(acl_file({user_name("pbx"): (password, "pbx")}))
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--aclfile",
            str(tmp_path / "users.acl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                anonymous(port).ping()
            except redis.exceptions.AuthenticationError:
                break  # up, and asking for a login
            except redis.exceptions.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port, password
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_redis_set_up_like_compose_refuses_a_client_without_credentials(compose_like_redis) -> None:
    port, password = compose_like_redis
    # given a local process that knows the port but not the password, when it pushes a reply a caller would hear
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous(port).rpush(hitl_reply_key("pbx", "r1"), '{"kind": "answer", "text": "the alarm code is 4711"}')
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous(port, username="default", password="").ping()
    # then it is refused, while the services log in with the URL the container's entrypoint makes
    url = environment(
        {"AIPBX_REDIS_URL": f"redis://127.0.0.1:{port}/0", "AIPBX_INSTANCE": "pbx", "AIPBX_REDIS_PASSWORD": password},
        Path("/nonexistent"),
    )["AIPBX_REDIS_URL"]
    with redis.Redis.from_url(url) as client:
        assert client.acl_whoami() == "aipbx-pbx"
        assert client.rpush(hitl_reply_key("pbx", "r1"), "{}") == 1


def test_celery_and_the_channel_layer_work_through_the_compose_like_users(compose_like_redis) -> None:
    from celery import Celery
    from channels_redis.core import RedisChannelLayer

    port, password = compose_like_redis
    url = with_credentials(f"redis://127.0.0.1:{port}/0", "aipbx-pbx", password)
    # Celery (kombu) sends to the long queue as the ARI app does
    producer = Celery("acl", set_as_current=False, broker=url, backend=url)
    producer.send_task("knowledge.tasks.extract_knowledge_task", args=["c1"], queue="aipbx.long")
    with redis.Redis.from_url(url) as client:
        assert client.llen("aipbx.long") == 1
    # the console's channel layer, under the instance's prefix
    layer = RedisChannelLayer(hosts=[url], prefix="aipbx:pbx:asgi")

    async def round_trip() -> dict:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "call.update", "n": 1})
        return await asyncio.wait_for(layer.receive(channel), 5)

    assert asyncio.run(round_trip())["n"] == 1


WORKER = """
import sys
from celery import Celery

app = Celery("acltest", broker=sys.argv[1], backend=sys.argv[1])


@app.task(name="acltest.add")
def add(a, b):
    return a + b


# As `make up` runs its workers: gossip, mingle and heartbeat on (they use the celeryev.* queues).
app.worker_main(["worker", "--pool=solo", "-Q", "aipbx", "--loglevel=warning"])
"""


def test_a_worker_with_gossip_and_heartbeats_runs_through_the_instance_user(compose_like_redis, tmp_path) -> None:
    from celery import Celery

    port, password = compose_like_redis
    url = with_credentials(f"redis://127.0.0.1:{port}/0", "aipbx-pbx", password)
    (tmp_path / "worker.py").write_text(WORKER)
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(tmp_path / "worker.py"), url], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        producer = Celery("acl", set_as_current=False, broker=url, backend=url)
        # then it takes the task and answers (a worker refused its event queues dies at start-up)
        assert producer.send_task("acltest.add", args=[2, 3], queue="aipbx").get(timeout=60) == 5
    finally:
        proc.terminate()
        proc.wait(20)
    assert "NoPermissionError" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-2000:]
