"""SIP facing the internet, on a real Asterisk 22: fail2ban bans a phone that keeps failing to register,
an extension's ``permit`` refuses other addresses, a call goes over TLS both ways, an SRTP extension
refuses plain RTP, and a call whose phone went silent is hung up (``rtp_timeout``).

One Asterisk instance of its own (TLS certificate, an ACL'd and an SRTP extension, a short RTP
timeout), no ARI app: every call here is phone to phone. fail2ban is Debian's, run as a foreground
server with its own configuration directory and socket; its action writes banned addresses to a file
instead of touching the firewall of this shared machine. Test phones bind different loopback
addresses (127.0.0.x) so that fail2ban can tell them apart.

Nothing skips: a missing fail2ban or Asterisk fails, as it must in CI (scripts/setup.sh installs both).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from aipbx.directory import parse_directory
from softphone import CallFailed, Phone, RegistrationFailed, SoftphoneError
from stack import fail2ban
from stack.asterisk import Asterisk
from stack.config import StackConfig, ensure_secrets
from stack.instance import free_port, scratch_config
from tests.integration.fail2ban_server import Fail2ban

RTP_TIMEOUT = 3  # seconds; production default 60
GOOD_IP, BAD_IP, ACL_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
DIRECTORY = {
    "extensions": [
        {"ext": "1001", "owner": "Office A"},
        {"ext": "1002", "owner": "Office B"},
        {"ext": "1003", "owner": "Loopback only", "permit": ["127.0.0.0/8"]},
        {"ext": "1004", "owner": "Branch office only", "permit": ["10.99.0.0/16"]},
        {"ext": "1005", "owner": "Road warrior", "srtp": True},
    ]
}


@dataclass
class SecurePbx:
    cfg: StackConfig
    asterisk: Asterisk
    ca_file: Path

    def phone(self, ext: str, *, local_ip: str = GOOD_IP, password: str | None = None, tls: bool = False) -> Phone:
        if tls:
            context = ssl.create_default_context(cafile=str(self.ca_file))  # verifies name and chain
            return Phone(
                ext=ext,
                password=password or self.cfg.sip_password(ext),
                local_ip=local_ip,
                server=("127.0.0.1", self.cfg.tls_port),
                transport="tls",
                tls_context=context,
            )
        return Phone(
            ext=ext,
            password=password or self.cfg.sip_password(ext),
            local_ip=local_ip,
            server=("127.0.0.1", self.cfg.sip_port),
        )

    @property
    def security_log(self) -> Path:
        return fail2ban.security_log(self.cfg)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (and its key), valid around now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aipbx test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@pytest.fixture(scope="module")
def secure_pbx(tmp_path_factory) -> SecurePbx:
    base = tmp_path_factory.mktemp("sipsec")
    cfg = scratch_config(f"sec{time.monotonic_ns() % 10**6}", base)
    cfg.directory = parse_directory(DIRECTORY)
    cfg.secrets = ensure_secrets(base / ".env", cfg.directory)
    cfg.tls_cert, cfg.tls_key = self_signed(base)
    cfg.tls_port = free_port()
    cfg.rtp_timeout = RTP_TIMEOUT
    asterisk = Asterisk(cfg)
    asterisk.start()
    yield SecurePbx(cfg, asterisk, cfg.tls_cert)
    asterisk.stop()


# --- fail2ban ------------------------------------------------------------------------------------------
def test_the_filter_reads_the_real_address_even_from_a_forged_user_name(tmp_path: Path) -> None:
    # given a line whose user name (chosen by the caller) carries a second LocalAddress/RemoteAddress pair
    assert shutil.which("fail2ban-regex"), "fail2ban-regex not found: apt-get install fail2ban"
    forged = 'x",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.7/5060'
    log = tmp_path / "security.log"
    log.write_text(
        '[2025-01-31 12:00:00.123 +0000] SECURITY[9] res_security_log.c: SecurityEvent="InvalidAccountID",'
        'EventTV="2025-01-31T12:00:00.123+0000",Severity="Error",Service="PJSIP",EventVersion="1",'
        f'AccountID="{forged}",SessionID="abc",LocalAddress="IPV4/UDP/192.0.2.1/5060",'
        'RemoteAddress="IPV4/UDP/203.0.113.9/40000"\n'
        '[2025-01-31 12:00:01.000 +0000] SECURITY[9] res_security_log.c: SecurityEvent="ChallengeSent",'
        'EventTV="x",Severity="Informational",Service="PJSIP",EventVersion="1",AccountID="1001",SessionID="d",'
        'LocalAddress="IPV4/TLS/192.0.2.1/5061",RemoteAddress="IPV4/TLS/203.0.113.10/40000",Challenge=""\n'
    )
    # when
    result = subprocess.run(
        ["fail2ban-regex", "--print-all-matched", "-o", "<ip>", str(log), str(fail2ban.FILTER_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then only the sender's own address counts, and a challenge (every phone gets one) does not
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["203.0.113.9"]


async def test_a_phone_failing_to_register_gets_banned_and_a_good_phone_does_not(
    secure_pbx: SecurePbx, tmp_path: Path
) -> None:
    # given fail2ban watching the instance's security log, and a phone with the right password
    jail = Fail2ban(tmp_path, secure_pbx.security_log)
    jail.start()
    try:
        good = secure_pbx.phone("1001", local_ip=GOOD_IP)
        await good.start()
        await good.register(expires=120, refresh=False)
        await good.register(expires=120, refresh=False)
        await good.unregister()
        await good.close()
        # when a phone guesses 1002's password five times
        for _ in range(5):
            bad = secure_pbx.phone("1002", local_ip=BAD_IP, password="wrong-password")
            await bad.start()
            with pytest.raises(RegistrationFailed):
                await bad.register(expires=120, refresh=False)
            await bad.close()
        # then its address is banned (the polling backend looks every second), the good one is not
        assert await asyncio.to_thread(jail.wait_banned, BAD_IP, 30), jail.log.read_text()[-3000:]
        status = jail.client("status", fail2ban.JAIL_NAME).stdout
        assert BAD_IP in status and GOOD_IP not in status
        assert GOOD_IP not in jail.banned()
    finally:
        jail.stop()


# --- per-extension ACL -------------------------------------------------------------------------------------
async def test_an_extension_registers_only_from_its_permitted_networks(secure_pbx: SecurePbx) -> None:
    # given 1004 may be used from 10.99.0.0/16 only, 1003 from loopback
    branch_only, loopback_only = secure_pbx.phone("1004", local_ip=ACL_IP), secure_pbx.phone("1003", local_ip=ACL_IP)
    await branch_only.start()
    await loopback_only.start()
    try:
        # when both register from 127.0.0.3, with their right passwords
        with pytest.raises(RegistrationFailed) as refused:
            await branch_only.register(expires=120, refresh=False)
        granted = await loopback_only.register(expires=120, refresh=False)
        # then only the permitted one is in, and the refusal is a security event (fail2ban counts it)
        assert refused.value.status in (401, 403)  # Asterisk hides why: the same answer as a wrong password
        assert granted > 0
        await loopback_only.unregister()
        lines = secure_pbx.security_log.read_text().splitlines()
        assert any(
            'SecurityEvent="FailedACL"' in line and 'AccountID="1004"' in line and f"/{ACL_IP}/" in line
            for line in lines
        )
    finally:
        await branch_only.close()
        await loopback_only.close()


# --- TLS and SRTP ------------------------------------------------------------------------------------------
async def test_a_call_over_tls_both_ways(secure_pbx: SecurePbx) -> None:
    # given 1001 registered over TLS (verifying the PBX's certificate), 1002 over UDP
    outside, office = secure_pbx.phone("1001", tls=True), secure_pbx.phone("1002")
    await outside.start()
    await office.start()
    try:
        await outside.register(expires=120)
        await office.register(expires=120)
        contacts = secure_pbx.asterisk.cli("pjsip show contacts")
        assert any("1001/sip:1001@" in line and "transport=TLS" in line for line in contacts.splitlines()), contacts
        # when the TLS phone calls the office and they talk
        call = await outside.dial("1002")
        ringing = await office.next_incoming(10)
        answered = await ringing.answer()
        await asyncio.wait_for(call.answered(), 10)
        call.play_tone(440, 1.0)
        answered.play_tone(880, 1.0)
        await asyncio.gather(call.play_done(), answered.play_done())
        await asyncio.sleep(0.3)
        # then audio crossed both ways, and the office's hang-up reaches the TLS phone on its connection
        assert len(call.rx_packets) > 25 and len(answered.rx_packets) > 25
        await answered.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        assert call.end_reason == "remote_bye"
        # and a call to the TLS phone arrives over the same connection
        back = await office.dial("1001")
        incoming = await outside.next_incoming(10)
        taken = await incoming.answer()
        await asyncio.wait_for(back.answered(), 10)
        await taken.hangup()
        await asyncio.wait_for(back.ended.wait(), 10)
        assert not outside.connection_lost.is_set()
    finally:
        await outside.close()
        await office.close()


async def test_tls_refuses_a_phone_that_does_not_trust_the_certificate(secure_pbx: SecurePbx) -> None:
    phone = Phone(
        ext="1001",
        password=secure_pbx.cfg.sip_password("1001"),
        local_ip=GOOD_IP,
        server=("127.0.0.1", secure_pbx.cfg.tls_port),
        transport="tls",
    )  # system CAs only

    with pytest.raises(SoftphoneError, match="certificate verify failed"):
        await phone.start()
    await phone.close()


async def test_an_srtp_extension_refuses_a_call_with_plain_rtp(secure_pbx: SecurePbx) -> None:
    # given 1005 is srtp: true and its phone (this softphone has no SRTP) offers plain RTP over TLS
    phone = secure_pbx.phone("1005", tls=True)
    await phone.start()
    try:
        await phone.register(expires=120, refresh=False)
        # when it calls
        with pytest.raises(CallFailed) as refused:
            await phone.call("1001", timeout=10)
        # then Asterisk will not set up unencrypted media for it
        assert refused.value.status == 488
        await phone.unregister()
    finally:
        await phone.close()


# --- dead calls --------------------------------------------------------------------------------------------
async def test_a_call_whose_phone_stops_sending_rtp_is_hung_up(secure_pbx: SecurePbx) -> None:
    caller, callee = secure_pbx.phone("1001"), secure_pbx.phone("1002")
    await caller.start()
    await callee.start()
    try:
        await callee.register(expires=120)
        call = await caller.dial("1002")
        answered = await (await callee.next_incoming(10)).answer()
        await asyncio.wait_for(call.answered(), 10)
        # given a call with media both ways outlives the timeout
        await asyncio.sleep(2 * RTP_TIMEOUT)
        assert not call.ended.is_set() and not answered.ended.is_set()
        # when the caller's network dies (no more RTP, no BYE)
        call.stop_sending_media()
        # then Asterisk hangs the call up (the margin is for a loaded machine, not the timeout's precision)
        await asyncio.wait_for(call.ended.wait(), RTP_TIMEOUT + 30)
        assert call.end_reason == "remote_bye"
        await asyncio.wait_for(answered.ended.wait(), 10)
    finally:
        await caller.close()
        await callee.close()
