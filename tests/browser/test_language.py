"""The header's language switch, in a real browser: picking 한국어 turns the console Korean and it stays so."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer, login

# Committed rows: the Daphne process reads them through its own connection.
pytestmark = pytest.mark.django_db(transaction=True)

USERNAME = "kim.minji"
PASSWORD = "correct horse battery staple"


def test_the_header_switch_flips_the_console_to_korean_and_back(page: Page, web_server: WebServer) -> None:
    # given an operator whose browser asks for English
    User.objects.create_superuser(USERNAME, "minji@example.com", PASSWORD)
    login(page, web_server, USERNAME, PASSWORD)
    page.goto(web_server.url + "/calls/")
    expect(page.locator("h1")).to_have_text("Call history")
    switch = page.get_by_label("Language")

    # when they pick Korean in the header (the form is sent on change)
    with page.expect_navigation():
        switch.select_option("ko")

    # then the same page is Korean, and the next page too (a cookie beats the browser's language)
    expect(page).to_have_url(web_server.url + "/calls/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("h1")).to_have_text("통화 기록")
    page.goto(web_server.url + "/")
    expect(page.locator("header nav")).to_contain_text("대시보드")

    # and back to English
    with page.expect_navigation():
        page.get_by_label("언어").select_option("en")
    expect(page.locator("h1")).to_have_text("Dashboard")
