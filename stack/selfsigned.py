"""A self-signed certificate for a SIP listener nobody gave a certificate to (the edge's TLS).

Phones outside the office reach the edge over TLS; an operator with a certificate for the edge's public
name passes it (``AIPBX_SIP_TLS_CERT`` / ``AIPBX_SIP_TLS_KEY``, as for a single node). Without one the
edge still offers TLS with a certificate made here at render time, into the instance's state directory:
phones then have to be given that certificate to trust (or told not to verify, which only encrypts).

It is kept across starts, so a phone that pinned it goes on working, and made again only when it
expires within :data:`RENEW_BEFORE` or no longer names every address the edge listens on.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

VALID_FOR = datetime.timedelta(days=825)  # the longest validity Apple's TLS clients accept
RENEW_BEFORE = datetime.timedelta(days=30)


def ensure_certificate(
    cert_file: Path, key_file: Path, addresses: Sequence[str], names: Sequence[str] = ()
) -> tuple[Path, Path]:
    """``cert_file`` and ``key_file`` (PEM), made if missing, expiring within 30 days, or not naming every
    one of ``addresses`` (IPs) and ``names`` (DNS names); returns them.

    The key is readable by its owner only (the edge reads it as root, before it drops privileges).
    """
    if cert_file.exists() and key_file.exists() and _still_good(cert_file, addresses, names):
        return cert_file, key_file
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else addresses[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    alt_names += [x509.DNSName(name) for name in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # a phone whose clock is a little behind
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # its own authority: a phone given this file as its trust anchor accepts it
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def _still_good(cert_file: Path, addresses: Sequence[str], names: Sequence[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if _expires(cert) - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE:
        return False
    have_ips = {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}
    have_names = set(alt.get_values_for_type(x509.DNSName))
    return set(addresses) <= have_ips and set(names) <= have_names


def _expires(cert) -> datetime.datetime:
    """When ``cert`` expires, in UTC. ``not_valid_after_utc`` is cryptography 42's; the edge's image has
    Debian 12's 38, whose ``not_valid_after`` is naive UTC."""
    expires = getattr(cert, "not_valid_after_utc", None)
    if expires is not None:
        return expires
    return cert.not_valid_after.replace(tzinfo=datetime.UTC)
