"""Django admin and the console's login/logout pages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser("operator", "operator@example.com", PASSWORD)


def test_admin_login_page_renders(client: Client) -> None:
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_admin_requires_login(client: Client) -> None:
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_admin_login_opens_the_admin(client: Client, admin_user: User) -> None:
    response = client.post("/admin/login/?next=/admin/", {"username": "operator", "password": PASSWORD}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/admin/"
    assert response.context["user"] == admin_user


def test_console_login_page_is_korean_by_default(client: Client, settings) -> None:
    settings.LANGUAGE_CODE = "ko-kr"  # the base settings' default (the suite's settings read English)
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert b'<html lang="ko">' in response.content
    assert "로그인".encode() in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_console_login_page_in_english(client: Client) -> None:
    response = client.get("/accounts/login/", headers={"accept-language": "en"})

    assert b'<html lang="en">' in response.content
    assert b"Log in" in response.content


def test_console_login_and_logout(client: Client, admin_user: User) -> None:
    # when
    logged_in = client.post("/accounts/login/", {"username": "operator", "password": PASSWORD})
    logged_out = client.post("/accounts/logout/")

    # then
    assert logged_in.status_code == 302
    assert logged_in["Location"] == "/"  # the console's dashboard
    assert logged_out.status_code == 302
    assert logged_out["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_console_login_rejects_a_wrong_password(client: Client, admin_user: User) -> None:
    response = client.post("/accounts/login/", {"username": "operator", "password": "wrong"})

    assert response.status_code == 200
    assert b'role="alert"' in response.content
