"""The served pages get their stylesheets: Daphne alone, DEBUG off, as deployed without a proxy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Response

from tests.browser.conftest import WebServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_stylesheets_are_served(page: Page, web_server: WebServer) -> None:
    # given
    stylesheets: list[Response] = []
    page.on("response", lambda r: stylesheets.append(r) if r.request.resource_type == "stylesheet" else None)

    # when
    page.goto(f"{web_server.url}/admin/login/")

    # then
    assert stylesheets, "the admin login page loaded no stylesheet"
    assert all(r.ok for r in stylesheets), [(r.url, r.status) for r in stylesheets]
    assert any(r.url.endswith("/static/admin/css/base.css") for r in stylesheets)
