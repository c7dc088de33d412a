"""The SIP socket of one phone: transport, transaction matching and message dispatch.

This is the only module that owns the SIP socket: a UDP socket, or (``transport="tls"``) one TLS
connection to the server, which carries every request and response both ways, as a phone outside
the office uses it (the server reaches the phone back over the connection the phone opened). Over
TLS, messages are cut from the stream by ``Content-Length`` (:mod:`softphone.framing`) and nothing is
retransmitted (RFC 3261 17.1.1.2: a reliable transport). Incoming messages are parsed (malformed
ones are counted and dropped), then:

* responses go to the matching client transaction; a retransmitted 2xx to an INVITE
  (whose transaction is already gone) goes to the dialog, which re-sends its ACK;
* retransmitted requests get the last response again from their server transaction;
* ACK for a non-2xx final response completes its INVITE server transaction, ACK for a 2xx
  goes to the dialog;
* CANCEL is answered here and handed to whoever owns the pending INVITE;
* requests with a To tag go to the dialog (481 if there is none); the rest go to the
  phone's out-of-dialog handler.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from softphone._tasks import TaskSet
from softphone.auth import DigestSession, pick_challenge
from softphone.errors import SipParseError, SoftphoneError
from softphone.framing import StreamFramer
from softphone.message import SipMessage, make_response, new_branch, parse_message
from softphone.transaction import ClientTransaction, ServerTransaction, TransactionTable

log = logging.getLogger("softphone")
Address = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE"
TRANSPORTS = ("udp", "tls")


class DialogUser(Protocol):
    """What the endpoint needs from a call that owns a dialog."""

    def on_request(self, request: SipMessage, txn: ServerTransaction) -> None: ...
    def on_ack(self, request: SipMessage) -> None: ...
    def on_2xx_retransmission(self, response: SipMessage) -> None: ...


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.endpoint._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)


class SipEndpoint:
    """Identity + socket + transactions of one phone (shared by the phone and its calls)."""

    def __init__(
        self,
        ext: str,
        password: str | None,
        server: Address,
        local_ip: str,
        port: int = 0,
        domain: str | None = None,
        display_name: str = "",
        user_agent: str = "aipbx-softphone/0.1",
        transport: str = "udp",
        tls_context: ssl.SSLContext | None = None,
        advertised: tuple[str, int] | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self.ext = ext
        self.transport = transport
        self.tls_context = tls_context
        self.server = server
        self.local_ip = local_ip
        self.port = port
        #: Behind a NAT: the address and SIP port the phone believes are its own, as Via, Contact and SDP
        #: say (the NAT maps them to where the socket really is); None: the socket's own.
        self.advertised = advertised
        self.domain = domain or server[0]
        self.display_name = display_name
        self.user_agent = user_agent
        self.digest = DigestSession(ext, password or "")
        self.has_password = password is not None
        self.transactions = TransactionTable()
        self.tasks = TaskSet(f"phone-{ext}")
        self.dialogs: dict[tuple[str, str], DialogUser] = {}
        self.cancel_handlers: dict[tuple[str, str], Callable[[], None]] = {}
        self.out_of_dialog: Callable[[SipMessage, ServerTransaction], None] | None = None
        self.malformed = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self.connection_lost = asyncio.Event()  # TLS: the server closed the connection (or it broke)

    @property
    def reliable(self) -> bool:
        """A stream transport: requests and responses are not retransmitted."""
        return self.transport == "tls"

    # --- identity ----------------------------------------------------------------------
    @property
    def aor(self) -> str:
        return f"sip:{self.ext}@{self.domain}"

    @property
    def advertised_ip(self) -> str:
        """The address Via, Contact and SDP carry."""
        return self.advertised[0] if self.advertised else self.local_ip

    @property
    def advertised_port(self) -> int:
        return self.advertised[1] if self.advertised else self.port

    @property
    def contact(self) -> str:
        suffix = ";transport=tls" if self.transport == "tls" else ""
        return f"<sip:{self.ext}@{self.advertised_ip}:{self.advertised_port}{suffix}>"

    def via(self) -> str:
        sent_by = f"{self.advertised_ip}:{self.advertised_port}"
        return f"SIP/2.0/{self.transport.upper()} {sent_by};branch={new_branch()};rport"

    # --- socket ------------------------------------------------------------------------
    async def open(self) -> None:
        """Bind the UDP socket, or connect to the server over TLS.

        Raises:
            SoftphoneError: the TLS connection failed (refused, or the certificate did not verify).
        """
        if self.transport == "tls":
            await self._connect_tls()
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.local_ip, self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def _connect_tls(self) -> None:
        context = self.tls_context or ssl.create_default_context()
        host, port = self.server
        try:
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=context,
                server_hostname=self.domain if context.check_hostname else None,
                local_addr=(self.local_ip, self.port),
            )
        except (OSError, ssl.SSLError) as exc:
            raise SoftphoneError(f"TLS connection to {host}:{port} failed: {exc}") from exc
        self._writer = writer
        self.port = writer.get_extra_info("sockname")[1]
        self.tasks.spawn(self._read_stream(reader), "tls-reader")

    async def _read_stream(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        try:
            while chunk := await reader.read(65536):
                for message in framer.feed(chunk):
                    self._on_datagram(message, self.server)
        except SipParseError as exc:
            self.malformed += 1
            log.warning("closing the TLS connection: unframeable SIP stream (%s)", exc)
        except (OSError, ssl.SSLError) as exc:
            if not self._closing:
                log.warning("TLS connection to %s:%s broke: %s", *self.server, exc)
        else:
            if not self._closing:
                log.warning("the server closed the TLS connection")
        self.connection_lost.set()

    async def close(self) -> None:
        self._closing = True
        await self.tasks.aclose()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._writer is not None:
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(), 2.0)
            except (OSError, ssl.SSLError, TimeoutError):
                pass  # closing anyway; a TLS close_notify the peer never answered is not an error here
            self._writer = None
        self.transactions.clear()

    @property
    def is_open(self) -> bool:
        return self._transport is not None or self._writer is not None

    def send(self, data: bytes, addr: Address) -> None:
        """Send one message: to ``addr`` over UDP; over TLS on the one connection (``addr`` unused)."""
        if self._writer is not None:
            log.debug("SIP out over TLS:\n%s", data.decode(errors="replace"))
            if not self._writer.is_closing():
                self._writer.write(data)
        elif self._transport is not None:
            log.debug("SIP out to %s:\n%s", addr, data.decode(errors="replace"))
            self._transport.sendto(data, addr)

    def respond(
        self,
        txn: ServerTransaction,
        status: int,
        reason: str = "",
        *,
        to_tag: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> SipMessage:
        extra = [("Server", self.user_agent)] + (headers or [])
        resp = make_response(txn.request, status, reason, to_tag=to_tag, headers=extra, body=body)
        txn.respond(resp)
        return resp

    # --- client side -------------------------------------------------------------------
    def start_transaction(self, request: SipMessage, dest: Address) -> ClientTransaction:
        if request.get("User-Agent") is None:
            request.add("User-Agent", self.user_agent)
        txn = ClientTransaction(request, dest, self.send, reliable=self.reliable)
        self.transactions.add_client(txn)
        return txn

    async def request_with_auth(
        self, build: Callable[[list[tuple[str, str]]], tuple[SipMessage, Address]]
    ) -> SipMessage:
        """Send a non-INVITE request, answering up to two 401/407 challenges.

        ``build(extra_headers)`` must return a fresh request (new branch, next CSeq) each time.

        Raises:
            TransactionTimeout: no final response.
        """
        extra: list[tuple[str, str]] = []
        for attempt in range(3):
            request, dest = build(extra)
            final = await self.start_transaction(request, dest).run()
            if final.status not in (401, 407) or not self.has_password:
                return final
            challenge = pick_challenge(final)
            # a second challenge means wrong credentials unless the nonce merely went stale
            if challenge is None or attempt == 2 or (attempt > 0 and not challenge.stale):
                return final
            extra = [self.digest.authorize(challenge, request.method or "", request.uri or "")]
        return final

    # --- dispatch ----------------------------------------------------------------------
    def _on_datagram(self, data: bytes, source: Address) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # CRLF keep-alive (RFC 5626)
        try:
            msg = parse_message(data)
            log.debug("SIP in from %s:\n%s", source, data.decode(errors="replace"))
            if msg.is_request:
                self._on_request(msg, source)
            else:
                self._on_response(msg)
        except SipParseError as exc:
            self.malformed += 1
            log.warning("dropped malformed SIP datagram from %s: %s", source, exc)

    def _on_response(self, resp: SipMessage) -> None:
        txn = self.transactions.match_response(resp)
        invite_2xx = resp.cseq[1] == "INVITE" and 200 <= (resp.status or 0) < 300
        # a 2xx ends the INVITE transaction: repeats of it belong to the dialog (RFC 6026)
        if txn is not None and not (invite_2xx and txn.final is not None):
            txn.receive(resp)
            return
        if invite_2xx:
            user = self.dialogs.get((resp.call_id, resp.from_addr.tag or ""))
            if user is not None:
                user.on_2xx_retransmission(resp)

    def _on_request(self, req: SipMessage, source: Address) -> None:
        existing = self.transactions.match_request(req)
        if req.method == "ACK":
            last = existing.last_response if existing is not None else None
            final = (last.status or 0) if last is not None else 0
            if existing is not None:
                existing.ack()  # ACK for our non-2xx final (or a 2xx ACK reusing the INVITE branch)
            user = self.dialogs.get((req.call_id, req.to_addr.tag or ""))
            if user is not None and (existing is None or 200 <= final < 300):
                user.on_ack(req)
            return
        if existing is not None:
            existing.retransmission()
            return
        txn = ServerTransaction(req, source, self.send, reliable=self.reliable)
        self.transactions.add_server(txn)
        if req.method == "CANCEL":
            self._on_cancel(req, txn)
            return
        to_tag = req.to_addr.tag
        if to_tag is not None:
            user = self.dialogs.get((req.call_id, to_tag))
            if user is None:
                self.respond(txn, 481)
            else:
                user.on_request(req, txn)
        elif self.out_of_dialog is not None:
            self.out_of_dialog(req, txn)
        else:
            self.respond(txn, 480)

    def _on_cancel(self, req: SipMessage, txn: ServerTransaction) -> None:
        key = (req.top_via.branch or "", "INVITE")
        invite_txn = self.transactions.server.get(key)
        handler = self.cancel_handlers.pop(key, None)
        if invite_txn is None:
            self.respond(txn, 481)
            return
        self.respond(txn, 200)
        if handler is not None:
            handler()
