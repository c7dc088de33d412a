"""Command line softphone for testing by hand.

    python -m softphone call   --server 127.0.0.1:5060 --ext 1001 --password X --to 1002 \\
                               [--play in.wav] [--record out.wav] [--duration 10]
    python -m softphone answer --server 127.0.0.1:5060 --ext 1002 --password Y [--after 2] \\
                               [--play in.wav] [--record out.wav] [--duration 10]

``--to`` takes an extension (sent through the server) or a full ``sip:`` URI.
The call ends after ``--duration`` seconds (default: the length of ``--play`` plus one second,
or 10 s) or when the other side hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from softphone.call import Call
from softphone.errors import CallFailed, RegistrationFailed
from softphone.phone import Phone
from softphone.wav import load_wav, save_wav


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host else (text, 5060)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m softphone", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("call", "answer"):
        s = sub.add_parser(name)
        s.add_argument("--server", type=_address, default=("127.0.0.1", 5060), help="host:port")
        s.add_argument("--ext", required=True)
        s.add_argument("--password")
        s.add_argument("--local-ip", help="address to bind/advertise (default: route to server)")
        s.add_argument("--sip-port", type=int, default=0, help="local SIP port (default: any)")
        s.add_argument("--play", help="WAV file to send once answered")
        s.add_argument("--record", help="write what we received to this WAV (8 kHz)")
        s.add_argument("--duration", type=float, help="seconds to stay in the call")
        s.add_argument("--no-register", action="store_true")
        s.add_argument("--codec", choices=["PCMU", "PCMA"], action="append")
        s.add_argument("-v", "--verbose", action="count", default=0)
    sub.choices["call"].add_argument("--to", required=True, help="extension or sip: URI")
    sub.choices["call"].add_argument("--timeout", type=float, default=30.0, help="ring timeout")
    sub.choices["answer"].add_argument("--after", type=float, default=0.0, help="ring this long first")
    sub.choices["answer"].add_argument("--wait", type=float, default=300.0, help="wait for a call")
    return p


async def _converse(call: Call, args: argparse.Namespace) -> None:
    duration = args.duration
    if args.play:
        pcm, rate = load_wav(args.play)
        call.play(pcm, rate)
        if duration is None:
            duration = len(pcm) / rate + 1.0
    try:
        await asyncio.wait_for(call.ended.wait(), duration if duration is not None else 10.0)
    except TimeoutError:
        await call.hangup()
    print(
        f"call ended: {call.end_reason}; codec {call.codec}; received {len(call.rx_packets)} "
        f"packets, sent {call.media.tx_packets}, other {call.rx_other_count}, "
        f"dtmf {[d for _, d in call.received_dtmf]}"
    )
    if args.record:
        save_wav(args.record, call.received_audio(), 8000)
        print(f"recorded {args.record}")


async def _main(args: argparse.Namespace) -> int:
    codecs = tuple(args.codec or ("PCMU", "PCMA"))
    async with Phone(
        args.ext, args.password, args.server, args.local_ip, codecs=codecs, sip_port=args.sip_port
    ) as phone:
        print(f"phone {args.ext} on {phone.uri}")
        try:
            if not args.no_register:
                granted = await phone.register()
                print(f"registered at {args.server[0]}:{args.server[1]} for {granted} s")
            if args.command == "call":
                call: Call = await phone.call(args.to, timeout=args.timeout)
                print(f"answered by {call.remote_uri}")
            else:
                incoming = await phone.next_incoming(timeout=args.wait)
                print(f"incoming call from {incoming.caller} ({incoming.display_name})")
                await asyncio.sleep(args.after)
                call = await incoming.answer()
            await _converse(call, args)
        except (CallFailed, RegistrationFailed) as exc:
            print(exc, file=sys.stderr)
            return 1
        except TimeoutError:
            print("no incoming call", file=sys.stderr)
            return 1
        finally:
            if phone.registered:
                try:
                    await phone.unregister()
                except RegistrationFailed as exc:
                    print(f"unregister: {exc}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
