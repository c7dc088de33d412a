"""The production settings: clean `check --deploy`, and clear errors for missing secrets."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from aipbx.sealing import new_key_spec
from tests.web.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "AIPBX_RECORDINGS_KEYS"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level=WARNING",
        "--settings=webconsole.settings.prod",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="pbx.example.com",
        AIPBX_RECORDINGS_KEYS=new_key_spec("k1"),
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_prod_refuses_to_start_without_secret_key() -> None:
    result = _manage("check", "--settings=webconsole.settings.prod", DJANGO_ALLOWED_HOSTS="pbx.example.com")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_prod_refuses_to_start_without_allowed_hosts() -> None:
    result = _manage("check", "--settings=webconsole.settings.prod", DJANGO_SECRET_KEY=secrets.token_urlsafe(50))

    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is not set" in result.stderr


def test_prod_refuses_to_start_without_the_recordings_key() -> None:
    # the web process and the worker (same settings) would otherwise keep and write recordings in clear
    result = _manage(
        "check",
        "--settings=webconsole.settings.prod",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="pbx.example.com",
    )

    assert result.returncode != 0
    assert "AIPBX_RECORDINGS_KEYS is not set. The production settings refuse to start without it" in result.stderr
