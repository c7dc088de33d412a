"""The public :class:`Phone`: register, place calls, take calls, close.

Example::

    phone = Phone(ext="1001", password="secret", server=("127.0.0.1", 5060))
    await phone.start()
    await phone.register()
    call = await phone.call("1002", timeout=30)
    call.play_tone(440, 1.0)
    await call.play_done()
    await call.hangup()
    await phone.close()

Out of dialog the phone answers OPTIONS (Asterisk's qualify), NOTIFY and MESSAGE with 200,
a stray BYE with 481, and anything else with 405. Registrations refresh themselves at half
the granted expiry until :meth:`Phone.unregister` or :meth:`Phone.close`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from softphone.call import Call
from softphone.endpoint import ALLOW, SipEndpoint
from softphone.errors import CallFailed, RegistrationFailed, SipParseError, TransactionTimeout
from softphone.incoming import IncomingCall
from softphone.media import RtpStream
from softphone.message import NameAddr, SipMessage, SipUri, new_call_id, new_tag
from softphone.outgoing import OutgoingCall
from softphone.sdp import LocalSdp, MediaDescription, negotiate, parse_sdp
from softphone.transaction import ServerTransaction

log = logging.getLogger("softphone")
Address = tuple[str, int]


class Phone:
    """One SIP user agent (one extension, one UDP socket, any number of calls).

    Args:
        ext: extension / SIP user name (also the digest user name).
        password: digest password; None never answers challenges.
        server: registrar / outbound proxy address.
        local_ip: address to bind and advertise (Via, Contact, SDP); default: the local
            address the OS would use to reach ``server`` (127.0.0.1 for a local server).
        sip_port: local SIP port, 0 for an ephemeral one.
        domain: SIP domain of our AOR (default: the server host).
        codecs: offer order, subset of ``("PCMU", "PCMA")``.
        auto_ring: send 180 Ringing as soon as an INVITE arrives.
        rtp_ports: range for per-call RTP sockets (even ports).
        transport: ``"udp"``, or ``"tls"``: one TLS connection to ``server`` carries all SIP
            (media stays plain RTP).
        tls_context: how to verify the server over TLS (default: the system's CAs and the
            server's name, ``domain`` or the server host).
        advertised: a phone behind a NAT: the (private) address and SIP port it puts in Via, Contact
            and SDP instead of its socket's, which nobody can reach; None: the socket's own.
    """

    def __init__(
        self,
        ext: str,
        password: str | None = None,
        server: Address = ("127.0.0.1", 5060),
        local_ip: str | None = None,
        *,
        sip_port: int = 0,
        domain: str | None = None,
        display_name: str = "",
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        auto_ring: bool = True,
        rtp_ports: tuple[int, int] = (40000, 49999),
        user_agent: str = "aipbx-softphone/0.1",
        transport: str = "udp",
        tls_context: ssl.SSLContext | None = None,
        advertised: tuple[str, int] | None = None,
    ) -> None:
        self.ext = ext
        self.server = server
        self.local_ip = local_ip or route_source(server)
        self.codecs = [c.upper() for c in codecs]
        self.auto_ring = auto_ring
        self.rtp_ports = rtp_ports
        self._ep = SipEndpoint(
            ext,
            password,
            server,
            self.local_ip,
            sip_port,
            domain,
            display_name,
            user_agent,
            transport,
            tls_context,
            advertised,
        )
        self._ep.out_of_dialog = self._out_of_dialog
        self._incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self._pending: list[IncomingCall] = []
        self._calls: list[Call] = []
        self._reg_call_id = ""
        self._reg_tag = new_tag()
        self._reg_cseq = 0
        self._reg_expires = 0
        self._refresh: asyncio.Task[None] | None = None
        self.registered = False
        #: OPTIONS requests answered out of any dialog (qualify, keep-alives)
        self.options_received = 0

    async def __aenter__(self) -> Phone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the SIP socket (over TLS: connect to the server).

        Raises:
            SoftphoneError: the TLS connection failed.
        """
        await self._ep.open()
        self._reg_call_id = new_call_id(self.local_ip)

    @property
    def port(self) -> int:
        """Local SIP port (known after :meth:`start`)."""
        return self._ep.port

    @property
    def transport(self) -> str:
        """``"udp"`` or ``"tls"``."""
        return self._ep.transport

    @property
    def connection_lost(self) -> asyncio.Event:
        """Set when the server closed the TLS connection (never over UDP)."""
        return self._ep.connection_lost

    @property
    def uri(self) -> str:
        """A URI that reaches this phone directly, e.g. ``sip:1002@127.0.0.1:40312``."""
        return f"sip:{self.ext}@{self.local_ip}:{self.port}"

    @property
    def calls(self) -> list[Call]:
        """Calls that have not ended."""
        return [c for c in self._calls if not c.ended.is_set()]

    async def close(self) -> None:
        """Hang up every call (bounded), refuse ringing ones, stop all tasks, close sockets."""
        if self._refresh is not None:
            self._refresh.cancel()
        for inc in self._pending:
            if inc.state in ("trying", "ringing"):
                inc._final(480, "", "rejected")
        await asyncio.gather(*(c.aclose() for c in self._calls), return_exceptions=True)
        self._calls.clear()
        await self._ep.close()
        self.registered = False

    # --- registration ------------------------------------------------------------------
    async def register(self, expires: int = 300, *, refresh: bool = True) -> int:
        """REGISTER our Contact; return the granted expiry in seconds.

        Raises:
            RegistrationFailed: final non-2xx (status from the registrar) or 408 on timeout.
        """
        granted = await self._register_once(expires)
        self._reg_expires = expires
        self.registered = True
        if self._refresh is not None:
            self._refresh.cancel()
        if refresh:
            self._refresh = self._ep.tasks.spawn(self._refresh_loop(granted), "register-refresh")
        return granted

    async def unregister(self) -> None:
        """Remove our registration (Expires: 0)."""
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        self.registered = False
        await self._register_once(0)

    async def _register_once(self, expires: int) -> int:
        host, port = self.server
        registrar = f"sip:{self._ep.domain}" + (f":{port}" if self._ep.domain == host else "")

        def build(extra: list[tuple[str, str]]) -> tuple[SipMessage, Address]:
            self._reg_cseq += 1
            msg = SipMessage(method="REGISTER", uri=registrar)
            msg.add("Via", self._ep.via())
            msg.add("Max-Forwards", "70")
            msg.add("From", str(NameAddr(self._ep.aor, self._ep.display_name, {"tag": self._reg_tag})))
            msg.add("To", str(NameAddr(self._ep.aor, self._ep.display_name)))
            msg.add("Call-ID", self._reg_call_id)
            msg.add("CSeq", f"{self._reg_cseq} REGISTER")
            msg.add("Contact", self._ep.contact)
            msg.add("Expires", str(expires))
            msg.add("Allow", ALLOW)
            for name, value in extra:
                msg.add(name, value)
            return msg, self.server

        try:
            final = await self._ep.request_with_auth(build)
            if final.status == 423 and expires:  # Interval Too Brief
                expires = int(final.get("Min-Expires") or expires)
                final = await self._ep.request_with_auth(build)
        except TransactionTimeout as exc:
            raise RegistrationFailed(408, "Request Timeout") from exc
        if not 200 <= (final.status or 0) < 300:
            raise RegistrationFailed(final.status or 0, final.reason)
        for contact in final.get_all("Contact"):
            na = NameAddr.parse(contact)
            if na.uri == self._ep.contact.strip("<>") and na.params.get("expires"):
                return int(na.params["expires"] or expires)
        return int(final.get("Expires") or expires)

    async def _refresh_loop(self, granted: int) -> None:
        while True:
            await asyncio.sleep(max(1.0, granted / 2))
            try:
                granted = await self._register_once(self._reg_expires)
            except RegistrationFailed as exc:
                log.warning("phone %s: registration refresh failed: %s", self.ext, exc)
                granted = 60

    # --- outgoing ----------------------------------------------------------------------
    def _resolve(self, target: str | Address) -> tuple[str, Address]:
        """Request-URI and next hop for ``"1002"``, ``"sip:1002@host:port"`` or ``(host, port)``."""
        if isinstance(target, tuple):
            return f"sip:{target[0]}:{target[1]}", (target[0], int(target[1]))
        if target.startswith(("sip:", "sips:")):
            uri = SipUri.parse(target)
            if uri.host == self._ep.domain and uri.port is None:
                return target, self.server
            return target, uri.address()
        host, port = self.server
        suffix = f":{port}" if self._ep.domain == host and port != 5060 else ""
        return f"sip:{target}@{self._ep.domain}{suffix}", self.server

    async def dial(self, target: str | Address, *, headers: list[tuple[str, str]] | None = None) -> OutgoingCall:
        """Send an INVITE and return at once; ``await call.answered()`` for the outcome."""
        uri, dest = self._resolve(target)
        media = RtpStream(self.local_ip, self.rtp_ports)
        await media.open()
        call = OutgoingCall(
            self._ep,
            media,
            LocalSdp(self._ep.advertised_ip, media.port, list(self.codecs)),
            call_id=new_call_id(self.local_ip),
            request_uri=uri,
            dest=dest,
            headers=headers,
        )
        self._track(call)
        call.start()
        return call

    async def call(
        self,
        target: str | Address,
        timeout: float = 30.0,  # noqa: ASYNC109
        *,
        headers: list[tuple[str, str]] | None = None,
    ) -> OutgoingCall:
        """Dial and wait for the answer (200 received, ACK sent).

        Raises:
            CallFailed: final error response, or 408 if nobody answered within ``timeout``
                (the INVITE is then cancelled).
        """
        call = await self.dial(target, headers=headers)
        try:
            await asyncio.wait_for(call.answered(), timeout)
        except TimeoutError:
            await call.cancel()
            if call.state == "confirmed":
                return call
            raise CallFailed(408, f"no answer within {timeout:g} s") from None
        return call

    def _track(self, call: Call) -> None:
        self._calls = [c for c in self._calls if not c.ended.is_set()] + [call]

    # --- incoming ----------------------------------------------------------------------
    async def next_incoming(self, timeout: float | None = 10.0) -> IncomingCall:  # noqa: ASYNC109
        """The next incoming call (already ringing when ``auto_ring``).

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        return await asyncio.wait_for(self._incoming.get(), timeout)

    def _out_of_dialog(self, req: SipMessage, txn: ServerTransaction) -> None:
        method = req.method
        if method == "INVITE":
            self._on_invite(req, txn)
        elif method == "OPTIONS":
            self.options_received += 1  # a registrar's qualify, or an edge's NAT keep-alive
            self._ep.respond(
                txn, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Contact", self._ep.contact)]
            )
        elif method in ("NOTIFY", "MESSAGE"):
            self._ep.respond(txn, 200)
        elif method == "BYE":
            self._ep.respond(txn, 481)
        else:
            self._ep.respond(txn, 405, headers=[("Allow", ALLOW)])

    def _on_invite(self, req: SipMessage, txn: ServerTransaction) -> None:
        remote: MediaDescription | None = None
        if req.body:
            try:
                remote = parse_sdp(req.body)
                negotiate(remote, self.codecs)
            except SipParseError:
                self._ep.respond(txn, 488)
                return
        self._ep.respond(txn, 100)
        inc = IncomingCall(
            self._ep, req, txn, remote_media=remote, codecs=self.codecs, rtp_ports=self.rtp_ports, on_answer=self._track
        )
        if self.auto_ring:
            inc.ring()
        self._pending = [p for p in self._pending if p.state in ("trying", "ringing")] + [inc]
        self._incoming.put_nowait(inc)


def route_source(server: Address) -> str:
    """The local IP the kernel would use to reach ``server`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(server)
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"
