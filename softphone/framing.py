"""SIP message framing on a byte stream (TCP, TLS): RFC 3261 section 18.3.

Pure code, no sockets. Over a stream there are no datagram boundaries: a message ends after its
header block (the first empty line) plus ``Content-Length`` bytes of body, and on a stream that
header is mandatory. Between messages a peer may send CRLFs as keep-alives (RFC 5626 section 3.5.1:
a double CRLF "ping"), which are skipped here.
"""

from __future__ import annotations

import re

from softphone.errors import SipParseError

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
#: A header block larger than this with no end in sight is not SIP (or is an attack): give up.
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class StreamFramer:
    """Cuts a byte stream into whole SIP messages.

    Example::

        framer = StreamFramer()
        for message in framer.feed(chunk):
            handle(parse_message(message))
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages now complete, in order.

        Raises:
            SipParseError: a header block without ``Content-Length``, or one too large; the stream
                cannot be resynchronised after that and should be closed.
        """
        self._buffer += data
        messages = []
        while True:
            # keep-alive CRLFs between messages
            start = 0
            while start < len(self._buffer) and self._buffer[start] in b"\r\n":
                start += 1
            del self._buffer[:start]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise SipParseError(f"no end of headers in {len(self._buffer)} bytes")
                return messages
            head = bytes(self._buffer[:end])
            match = _CONTENT_LENGTH.search(head)
            if match is None:
                raise SipParseError("a SIP message on a stream must have a Content-Length header")
            length = int(match.group(1))
            if length > MAX_BODY_BYTES:
                raise SipParseError(f"Content-Length {length} is too large")
            total = end + 4 + length
            if len(self._buffer) < total:
                return messages
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]

    @property
    def pending(self) -> int:
        """Bytes received that are not yet a whole message."""
        return len(self._buffer)
