"""``X-Forwarded-Proto`` counts only when a configured proxy sent it.

Django's ``SECURE_PROXY_SSL_HEADER`` (production settings) believes the header from anyone. Daphne
listens on loopback behind the TLS proxy, but a second way in (a published port, a misrouted
proxy) would let any client claim ``https`` and so get secure-only behaviour (no redirect, HSTS,
"secure" requests). :class:`TrustedProxyMiddleware` drops the header unless the peer
(``REMOTE_ADDR``) is in ``AIPBX_TRUSTED_PROXIES`` (addresses or networks, comma-separated; loopback
by default). It runs first, before ``SecurityMiddleware`` reads the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

__all__ = ["TrustedProxyMiddleware", "client_ip", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_FOR",
)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` -> networks; a bad entry raises ``ValueError`` naming it."""
    networks = []
    for value in (v.strip() for v in values):
        if value:
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError as exc:
                raise ValueError(f"AIPBX_TRUSTED_PROXIES: {value!r} is not an address or network") from exc
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def trusted(remote_addr: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``X-Forwarded-For`` read from the right past the trusted proxies, else the peer.

    Used for login throttling (``AXES_CLIENT_IP_CALLABLE``). Only the entries that trusted proxies
    appended are believed; the left-most ones are whatever the client wrote.
    """
    networks = _networks(tuple(settings.AIPBX_TRUSTED_PROXIES))
    peer = request.META.get("REMOTE_ADDR", "")
    if not trusted(peer, networks):
        return peer
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if not trusted(hop, networks):
            return hop
    return forwarded[0] if forwarded else peer


class TrustedProxyMiddleware:
    """Removes the ``X-Forwarded-*`` headers of requests that did not come through a trusted proxy."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _strip(self, request: HttpRequest) -> None:
        networks = _networks(tuple(settings.AIPBX_TRUSTED_PROXIES))
        if not trusted(request.META.get("REMOTE_ADDR", ""), networks):
            for header in HEADERS:
                request.META.pop(header, None)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        self._strip(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        self._strip(request)
        return await self.get_response(request)
