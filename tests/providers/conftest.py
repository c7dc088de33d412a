"""Fixtures of the provider contract tests: the wire-level fakes and the real clients pointed at them.

Every cloud provider here is the production class on the official SDK; only
the far end is local (``tests/fakes``); the factories in
``tests.providers.factories`` point them at it. Providers registered with the
``closer`` fixture are closed when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the local family must never reach for a model hub

from tests.fakes.gemini_http import FakeGemini
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI


def pytest_configure(config: pytest.Config) -> None:
    # google-genai subclasses aiohttp.ClientSession, which aiohttp warns about; nothing to fix on our side.
    config.addinivalue_line("filterwarnings", "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


class Closer:
    """Collects providers (anything with ``aclose()``) and closes them at teardown."""

    def __init__(self) -> None:
        self._items: list[Any] = []

    def __call__(self, provider: Any) -> Any:
        self._items.append(provider)
        return provider

    async def aclose(self) -> None:
        for item in reversed(self._items):
            await item.aclose()


@pytest.fixture
async def closer() -> AsyncIterator[Closer]:
    c = Closer()
    yield c
    await c.aclose()


@pytest.fixture
async def google_cloud() -> AsyncIterator[FakeGoogleCloud]:
    server = FakeGoogleCloud()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def gemini_server() -> AsyncIterator[FakeGemini]:
    server = FakeGemini()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()
