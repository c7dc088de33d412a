"""Console and admin logins are throttled with django-axes (issue 15, item 7)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.web.calls_factory import PASSWORD, make_user
from webconsole.core.proxy import client_ip

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def throttling(settings) -> None:
    settings.AXES_ENABLED = True  # off in the test settings for client.login(); on here, as in production


def fail(client: Client, username: str = "kim", **extra: str):
    return client.post(LOGIN, {"username": username, "password": "wrong-password"}, **extra)


def test_five_failures_lock_the_name_from_that_address_even_for_the_right_password() -> None:
    make_user("kim")
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert fail(client).status_code == 200  # the form again, with its error
    assert fail(client).status_code == 429  # the limit-th failure locks
    locked = client.post(LOGIN, {"username": "kim", "password": PASSWORD})
    assert locked.status_code == 429 and "_auth_user_id" not in client.session


def test_the_lock_is_per_name_and_address_and_a_success_resets_the_count() -> None:
    make_user("kim")
    make_user("lee")
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        fail(attacker)
    # the same person from the office, and another user from the attacker's address, still log in
    assert Client(REMOTE_ADDR="192.0.2.10").post(LOGIN, {"username": "kim", "password": PASSWORD}).status_code == 302
    assert attacker.post(LOGIN, {"username": "lee", "password": PASSWORD}).status_code == 302
    # and a success wipes earlier failures of that pair
    office = Client(REMOTE_ADDR="192.0.2.11")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        fail(office, "lee")
    assert office.post(LOGIN, {"username": "lee", "password": PASSWORD}).status_code == 302
    assert fail(Client(REMOTE_ADDR="192.0.2.11"), "lee").status_code == 200


def test_behind_the_proxy_the_client_address_is_the_forwarded_one(settings) -> None:
    settings.AIPBX_TRUSTED_PROXIES = ["127.0.0.1"]
    make_user("kim")
    first, second = Client(REMOTE_ADDR="127.0.0.1"), Client(REMOTE_ADDR="127.0.0.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        fail(first, HTTP_X_FORWARDED_FOR="198.51.100.7")
    # another client behind the same proxy is not locked out with the attacker
    ok = second.post(LOGIN, {"username": "kim", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert ok.status_code == 302


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # through the proxy
        ("127.0.0.1", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # a forged left part is ignored
        ("127.0.0.1", "198.51.100.7, 10.0.0.5", "198.51.100.7"),  # past a second trusted proxy
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy: its header means nothing
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_client_ip(rf, settings, peer: str, forwarded: str, expected: str) -> None:
    settings.AIPBX_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
