"""Run a phone's asyncio script in a thread of its own while the test drives the browser."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class InThread(threading.Thread):
    """``InThread(lambda: script(...)).start()`` then ``.result()``: the script's value, or its exception."""

    def __init__(self, script: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(daemon=True)
        self.script = script
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = asyncio.run(self.script())
        except BaseException as exc:  # re-raised in the test by result()
            self.error = exc

    def result(self, timeout: float = 120) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the phone's script did not finish"
        if self.error is not None:
            raise self.error
        return self.value
