"""The environment parsing behind the settings (pure: no Django set-up needed)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from webconsole.settings.env import (
    DEFAULT_DATABASE_URL,
    database_url,
    get_mandatory_secret,
    parse_database_url,
    read_env,
    redis_url_with_db,
    split_list,
)


def test_default_database_url() -> None:
    db = parse_database_url(DEFAULT_DATABASE_URL)

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "aipbx", "postgres", "", "127.0.0.1", "5432",
    )  # fmt: skip
    assert db["OPTIONS"] == {}


def test_database_url_with_encoded_password_and_options() -> None:
    db = parse_database_url("postgres://ai%40pbx:p%3Ass%2Fw@db.internal:6543/calls?sslmode=require")

    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "ai@pbx", "p:ss/w", "db.internal", "6543", "calls",
    )  # fmt: skip
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_socket_host_keeps_its_case() -> None:
    encoded = parse_database_url("postgresql://postgres@%2FVar%2Frun%2Fpostgresql/aipbx")
    in_query = parse_database_url("postgresql:///aipbx?host=/var/run/postgresql&port=5433")

    assert encoded["HOST"] == "/Var/run/postgresql"
    assert (in_query["HOST"], in_query["PORT"], in_query["OPTIONS"]) == ("/var/run/postgresql", "5433", {})


def test_database_url_ipv6_host() -> None:
    db = parse_database_url("postgresql://u@[::1]:5432/aipbx")

    assert (db["HOST"], db["PORT"]) == ("::1", "5432")


@pytest.mark.parametrize(
    "url",
    ["mysql://u@h/db", "postgresql://u@h:5432/", "postgresql://u@h:port/db"],
)
def test_bad_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="AIPBX_DATABASE_URL"):
        parse_database_url(url)


def test_read_env_defaults_and_empty_values() -> None:
    env = read_env({"DJANGO_SECRET_KEY": "", "DJANGO_ALLOWED_HOSTS": " "})

    assert env.database_url == DEFAULT_DATABASE_URL
    assert env.secret_key is None
    assert env.allowed_hosts == ()


def test_read_env_lists() -> None:
    env = read_env({"DJANGO_ALLOWED_HOSTS": "pbx.example.com, .example.org localhost"})

    assert env.allowed_hosts == ("pbx.example.com", ".example.org", "localhost")
    assert split_list(None) == ()


def test_mandatory_secret() -> None:
    assert get_mandatory_secret("DJANGO_SECRET_KEY", "s3cret") == "s3cret"
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is not set"):
        get_mandatory_secret("DJANGO_SECRET_KEY", None)


def test_redis_url_with_db() -> None:
    assert redis_url_with_db("redis://127.0.0.1:6379/0", 15) == "redis://127.0.0.1:6379/15"
    assert redis_url_with_db("redis://:pw@redis:6379", 15) == "redis://:pw@redis:6379/15"


def test_a_databases_entry_turns_back_into_the_url_it_came_from() -> None:
    url = "postgresql://ai%40pbx:p%3Ass%2Fw@db.internal:6543/calls"
    assert database_url(parse_database_url(url)) == url
    assert database_url(parse_database_url("postgresql://postgres@127.0.0.1:5432/aipbx")).endswith("/aipbx")
