"""A small typed ARI client: REST over aiohttp and the events websocket with reconnect.

Why our own: the PyPI clients await handlers inline (a handler waiting for a later event deadlocks)
and are untyped. Here the websocket reader only parses and hands events to a callback that must not
block; each call session consumes its events from its own queue.

Hang-up races are normal in telephony: deleting a channel or bridge that is already gone (404) is
success for :meth:`AriClient.hangup` and :meth:`AriClient.destroy_bridge`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ariapp.ari.models import AriEvent, AriParseError, Channel
from ariapp.errors import AriHttpError, AriNotFound, AriUnavailable

log = logging.getLogger(__name__)
BUSY_CONTEXT = "aipbx-busy"  # the dialplan context that plays the busy message (asterisk/templates)
# The only endpoints a call may be placed to: a PJSIP extension or number, optionally through a named
# PJSIP trunk (``PJSIP/0101234@trunk``). Checked here, so no caller of this client can dial anything else.
DIAL_ENDPOINT = re.compile(r"^PJSIP/\+?[0-9]{2,20}(?:@[A-Za-z0-9_-]{1,40})?$")

# Pseudo event delivered after every (re)connection of the websocket, before any real event.
CONNECTED = "AriConnected"

# What the app listens to besides its own Stasis channels: every channel (the call tracker follows
# phone-to-phone calls too). Not ``subscribeAll``: that also subscribes every device state, and
# Asterisk 22 can deadlock its ARI session when an app disconnects while a device state change is in
# flight (asterisk/asterisk#2170): the PBX stops accepting the app until it is restarted.
EVENT_SOURCES = ("channel:",)

# Sent to our websocket when another one connects with the same app name. Asterisk then sends that
# websocket nothing more but leaves it open: without acting on it the app would stay "connected", deaf.
REPLACED = "ApplicationReplaced"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: initial, doubling, capped."""

    initial: float = 0.25
    maximum: float = 5.0

    def delays(self):
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, app: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth = aiohttp.BasicAuth(user, password)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        self.requests_total = 0
        self.request_results: Counter[tuple[str, str]] = Counter()  # (method, "2xx"|"404"|"4xx"|"5xx"|"unavailable")

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(auth=self._auth, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        self._closing = True
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        url = f"{self.base_url}/ari{path}"
        clean = {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in (params or {}).items()
            if v is not None
        }
        self.requests_total += 1
        result = "unavailable"
        try:
            async with self._http().request(method, url, params=clean, json=body) as response:
                result = "404" if response.status == 404 else f"{response.status // 100}xx"
                text = await response.text()
                if response.status == 404:
                    raise AriNotFound(method, path, 404, text)
                if response.status >= 400:
                    raise AriHttpError(method, path, response.status, text)
                return json.loads(text) if text else None
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            result = "unavailable"
            raise AriUnavailable(f"ARI {method} {path}: {exc!r}") from exc
        finally:
            self.request_results[(method, result)] += 1

    # --- channels -------------------------------------------------------------------------------
    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        """Hang up; returns False if the channel was already gone (not an error)."""
        try:
            await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})
            return True
        except AriNotFound:
            return False

    async def turn_away(self, channel_id: str, language: str) -> bool:
        """Send a call refused at a cap to the busy message of ``[aipbx-busy]`` (then 486), the one
        place a channel may leave Stasis for: the context is fixed here, so no caller of this client
        can move a call anywhere else. ``language`` is the extension of that context (``en``, ``ko``).
        Returns False if the channel was already gone."""
        if not language.isalpha():
            raise ValueError(f"not a busy-message language: {language!r}")
        try:
            await self.request(
                "POST",
                f"/channels/{channel_id}/continue",
                params={"context": BUSY_CONTEXT, "extension": language, "priority": 1},
            )
            return True
        except AriNotFound:
            return False

    async def originate(
        self, channel_id: str, endpoint: str, *, caller_id: str, timeout_s: int, app_args: str
    ) -> dict[str, Any]:
        """Place a call to ``endpoint`` (``PJSIP/<digits>[@trunk]`` only) into this app: the channel enters
        Stasis with ``app_args`` when it answers; a busy or unanswered one is destroyed with its cause.

        Used only by the operator's click-to-call (``ariapp.calls.callback``), never by the conversation.
        """
        if not DIAL_ENDPOINT.fullmatch(endpoint):
            raise ValueError(f"not a dialable endpoint: {endpoint!r}")
        return await self.request(
            "POST",
            f"/channels/{channel_id}",
            params={
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": app_args,
                "callerId": caller_id,
                "timeout": timeout_s,
            },
        )

    async def endpoint_state(self, technology: str, resource: str) -> str | None:
        """``online``, ``offline`` or ``unknown`` (PJSIP: offline = no registered contact); None if no such endpoint."""
        try:
            data = await self.request("GET", f"/endpoints/{technology}/{resource}")
        except AriNotFound:
            return None
        return str((data or {}).get("state") or "unknown")

    async def global_variable(self, name: str) -> str | None:
        """A dialplan global (``[globals]`` of extensions.conf), or None when it is not set."""
        try:
            data = await self.request("GET", "/asterisk/variable", params={"variable": name})
        except AriNotFound:
            return None
        value = (data or {}).get("value")
        return str(value) if value else None

    async def stop_playback(self, playback_id: str) -> bool:
        """Stop a playback; False if it had already finished (not an error)."""
        try:
            await self.request("DELETE", f"/playbacks/{playback_id}")
            return True
        except AriNotFound:
            return False

    async def get_channel(self, channel_id: str) -> Channel | None:
        try:
            return Channel.parse(await self.request("GET", f"/channels/{channel_id}"))
        except AriNotFound:
            return None

    async def list_channels(self) -> list[Channel]:
        return [Channel.parse(item) for item in await self.request("GET", "/channels") or []]

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        try:
            data = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        except AriNotFound:
            return None
        except AriHttpError as exc:
            if exc.status == 400:
                return None
            raise
        return str(data.get("value", "")) if isinstance(data, dict) else None

    async def external_media(self, channel_id: str, external_host: str, fmt: str = "ulaw") -> dict[str, Any]:
        return await self.request(
            "POST",
            "/channels/externalMedia",
            params={
                "app": self.app,
                "channelId": channel_id,
                "external_host": external_host,
                "format": fmt,
                "encapsulation": "rtp",
                "transport": "udp",
                "connection_type": "client",
                "direction": "both",
            },
        )

    async def snoop(self, channel_id: str, snoop_id: str, spy: str = "in") -> dict[str, Any]:
        """A channel in our app that hears ``channel_id``: ``spy=in`` is what that party says."""
        return await self.request(
            "POST",
            f"/channels/{channel_id}/snoop",
            params={"app": self.app, "snoopId": snoop_id, "spy": spy, "whisper": "none"},
        )

    async def play(self, channel_id: str, media: str, playback_id: str | None = None) -> dict[str, Any]:
        return await self.request(
            "POST", f"/channels/{channel_id}/play", params={"media": media, "playbackId": playback_id}
        )

    async def start_moh(self, channel_id: str, moh_class: str = "default") -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        try:
            await self.request("DELETE", f"/channels/{channel_id}/moh")
        except AriNotFound:
            pass

    # --- bridges --------------------------------------------------------------------------------
    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> dict[str, Any]:
        return await self.request("POST", f"/bridges/{bridge_id}", params={"type": bridge_type})

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params={"channel": ",".join(channel_ids)})

    async def destroy_bridge(self, bridge_id: str) -> bool:
        try:
            await self.request("DELETE", f"/bridges/{bridge_id}")
            return True
        except AriNotFound:
            return False

    async def list_bridges(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/bridges") or [])

    # --- application ----------------------------------------------------------------------------
    async def application(self) -> dict[str, Any]:
        return await self.request("GET", f"/applications/{self.app}")

    async def startup_time(self) -> str | None:
        """When the Asterisk process started: a different value after a reconnect means it restarted."""
        info = await self.request("GET", "/asterisk/info", params={"only": "status"})
        status = info.get("status") if isinstance(info, dict) else None
        started = status.get("startup_time") if isinstance(status, dict) else None
        return str(started) if started else None

    async def ping(self) -> bool:
        try:
            await self.request("GET", "/asterisk/ping")
            return True
        except (AriUnavailable, AriHttpError):
            return False

    # --- events ---------------------------------------------------------------------------------
    async def subscribe(self, event_source: str) -> None:
        """Subscribe the application to an event source (``channel:`` alone means every channel)."""
        await self.request("POST", f"/applications/{self.app}/subscription", params={"eventSource": event_source})

    async def run_events(
        self,
        on_event: Callable[[AriEvent], Awaitable[None] | None],
        *,
        backoff: Backoff | None = None,
        sources: tuple[str, ...] = EVENT_SOURCES,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        """Read events until :meth:`close`; reconnect with backoff on any unexpected close.

        ``on_event`` is called for each event in order, and with a pseudo event of type
        :data:`CONNECTED` after each (re)connection and its subscriptions. It must return quickly.

        :data:`REPLACED` (another websocket took the app's name) closes ours and takes the name back
        after ``backoff.maximum``: two processes sharing a name then alternate, each saying so in
        its log and on ``/ready``, instead of one of them sitting deaf and ready.
        """
        ws_url = self.base_url.replace("http", "ws", 1) + "/ari/events"
        params = {"app": self.app, "subscribeAll": "false"}
        delays = (backoff or Backoff()).delays()
        while not self._closing:
            replaced = False
            try:
                async with self._http().ws_connect(
                    ws_url, params=params, heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
                ) as ws:
                    delays = (backoff or Backoff()).delays()
                    for source in sources:
                        await self.subscribe(source)
                    log.info("ari websocket connected", extra={"app": self.app})
                    await _maybe_await(on_event(AriEvent(CONNECTED, self.app, None, None, {})))
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        try:
                            event = AriEvent.parse(json.loads(message.data))
                        except (ValueError, AriParseError) as exc:
                            log.warning("dropped malformed ARI event: %s", exc)
                            continue
                        if event.type == REPLACED and event.application == self.app:
                            replaced = True
                            log.error(
                                "another ARI connection took the app name %s: this process receives no "
                                "more events; every deployment needs its own AIPBX_ARI_APP",
                                self.app,
                            )
                            break
                        await _maybe_await(on_event(event))
            except (TimeoutError, aiohttp.ClientError, OSError, AriUnavailable, AriHttpError) as exc:
                if self._closing:
                    break
                log.warning("ari websocket error: %r", exc)
            if on_disconnect is not None:
                on_disconnect()
            if self._closing:
                break
            delay = (backoff or Backoff()).maximum if replaced else next(delays)
            log.warning("ari websocket closed; reconnecting in %.2f s", delay)
            await asyncio.sleep(delay)


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result
