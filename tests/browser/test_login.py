"""Logging in to the console through the real form, in a real browser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.shortcuts import resolve_url
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer, login

# Committed rows: the Daphne process reads them through its own connection.
pytestmark = pytest.mark.django_db(transaction=True)

USERNAME = "kim.minji"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator() -> User:
    return User.objects.create_superuser(USERNAME, "minji@example.com", PASSWORD)


def test_login_lands_on_the_console(page: Page, web_server: WebServer, operator: User) -> None:
    # when
    login(page, web_server, USERNAME, PASSWORD)

    # then
    expect(page).to_have_url(web_server.url + resolve_url(settings.LOGIN_REDIRECT_URL))
    expect(page.locator("body")).to_contain_text(USERNAME, use_inner_text=True)
    expect(page.locator('input[name="password"]')).to_have_count(0)


def test_wrong_password_stays_on_the_login_page(page: Page, web_server: WebServer, operator: User) -> None:
    # when
    login(page, web_server, USERNAME, "not the password")

    # then
    expect(page).to_have_url(f"{web_server.url}/accounts/login/")
    expect(page.get_by_role("alert")).to_have_text(
        "Please enter a correct username and password. Note that both fields may be case-sensitive."
    )
    expect(page.locator('input[name="username"]')).to_have_value(USERNAME)
