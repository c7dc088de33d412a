"""X-Forwarded-Proto counts only from a configured proxy (issue 15, item 7)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from webconsole.core.proxy import parse_networks

pytestmark = pytest.mark.django_db

PROD_TLS = {
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 3600,
}


@override_settings(**PROD_TLS, AIPBX_TRUSTED_PROXIES=["127.0.0.1", "10.1.0.0/16"])
@pytest.mark.parametrize(
    ("peer", "secure"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),  # the proxy on this host, or on the configured network
        ("203.0.113.7", False),
        ("10.2.0.1", False),  # anyone else claiming https
    ],
)
def test_the_https_claim_counts_only_from_a_trusted_proxy(peer: str, secure: bool) -> None:
    response = Client(REMOTE_ADDR=peer).get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    if secure:
        assert response.status_code == 200 and "max-age=3600" in response["Strict-Transport-Security"]
    else:  # treated as the plain HTTP it is: sent to https, no HSTS
        assert response.status_code == 301 and response["Location"].startswith("https://")
        assert "Strict-Transport-Security" not in response


def test_a_bad_proxy_entry_is_named() -> None:
    assert [str(n) for n in parse_networks(["127.0.0.1", " ::1 ", "10.0.0.0/8", ""])] == [
        "127.0.0.1/32",
        "::1/128",
        "10.0.0.0/8",
    ]
    with pytest.raises(ValueError, match="'proxy.example' is not an address or network"):
        parse_networks(["proxy.example"])
