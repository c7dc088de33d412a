"""SIP facing the internet, as rendered: the security log, per-extension ACLs, TLS, SRTP, NAT, RTP
timeouts and the fail2ban jail. The same options run on a real Asterisk in
tests/integration/test_sip_security.py."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest

from aipbx.directory import DirectoryError, parse_directory
from stack import fail2ban
from stack.asterisk import DOCKER_LAYOUT, AsteriskError, render
from stack.config import SettingsError, StackConfig, sip_settings
from stack.container import asterisk_config
from stack.instance import scratch_config
from tests.unit.test_asterisk_hardening import Section, of_type, parse_conf, resolved

TWO = [{"ext": "1001", "owner": "Office"}, {"ext": "1002", "owner": "Road warrior"}]


def config(tmp_path: Path, **fields: object) -> StackConfig:
    cfg = scratch_config("sec", tmp_path)
    cfg.chroot = tmp_path / "chroot"
    for name, value in fields.items():
        setattr(cfg, name, value)
    return cfg


def rendered(cfg: StackConfig, tmp_path: Path, layout: dict[str, str] | None = None) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in render(cfg, tmp_path / "etc", layout) if p.suffix == ".conf"}


def pjsip(files: dict[str, str]) -> dict[str, list[Section]]:
    return resolved(parse_conf(files["pjsip.conf"]))


def endpoint(files: dict[str, str], ext: str) -> Section:
    return of_type(pjsip(files), "endpoint")[ext]


def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n")
    return cert, key


# --- the security log --------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", [None, DOCKER_LAYOUT], ids=["instance", "docker"])
def test_the_security_log_is_written_to_a_file_with_utc_offsets(tmp_path: Path, layout) -> None:
    files = rendered(config(tmp_path), tmp_path, layout)

    [logger_general, logfiles] = parse_conf(files["logger.conf"])
    assert logfiles.get("security.log") == "security"  # fail2ban reads it, in the container too
    assert logger_general.get("dateformat", "").endswith("%z")  # times stay right whatever the zones


# --- dead calls ----------------------------------------------------------------------------------------
def test_phone_endpoints_hang_up_calls_without_rtp(tmp_path: Path) -> None:
    files = rendered(config(tmp_path), tmp_path)

    for section in of_type(pjsip(files), "endpoint").values():
        assert section.get("rtp_timeout") == "120"
        assert section.get("rtp_timeout_hold") == "1200"


def test_rtp_timeout_comes_from_the_settings_and_zero_turns_it_off(tmp_path: Path) -> None:
    assert sip_settings({"AIPBX_SIP_RTP_TIMEOUT": "0"})["rtp_timeout"] == 0
    assert sip_settings({})["rtp_timeout"] == 120
    with pytest.raises(SettingsError, match="AIPBX_SIP_RTP_TIMEOUT"):
        sip_settings({"AIPBX_SIP_RTP_TIMEOUT": "-5"})

    files = rendered(config(tmp_path, rtp_timeout=0), tmp_path)

    assert endpoint(files, "1001").get("rtp_timeout") == "0"


# --- per-extension ACL ---------------------------------------------------------------------------------
def test_an_extension_with_permit_refuses_every_other_address(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.directory = parse_directory(
        {
            "extensions": [
                {"ext": "1001", "owner": "Office", "permit": ["192.168.1.0/24", "203.0.113.7"]},
                {"ext": "1002", "owner": "Anywhere"},
            ]
        }
    )

    files = rendered(cfg, tmp_path)

    office = endpoint(files, "1001")
    acl = [(k, v) for k, v in office.options if k in ("deny", "permit")]
    # the last matching rule wins in Asterisk: deny everything first, then the networks
    assert acl == [
        ("deny", "0.0.0.0/0.0.0.0"),
        ("deny", "::/0"),
        ("permit", "192.168.1.0/24"),
        ("permit", "203.0.113.7/32"),
    ]
    assert endpoint(files, "1002").all("deny") == [] and endpoint(files, "1002").all("permit") == []


def test_permit_in_defaults_applies_to_every_extension_unless_it_has_its_own() -> None:
    directory = parse_directory(
        {
            "defaults": {"permit": ["10.0.0.0/8"]},
            "extensions": [{"ext": "1001", "owner": "A"}, {"ext": "1002", "owner": "B", "permit": "192.168.5.0/24"}],
        }
    )

    assert [e.permit for e in directory] == [("10.0.0.0/8",), ("192.168.5.0/24",)]


@pytest.mark.parametrize("permit", [["not-a-network"], [], "10.0.0.0/33", [{"a": 1}]])
def test_a_malformed_permit_is_refused_with_its_place(permit: object) -> None:
    with pytest.raises(DirectoryError, match=r"extensions\[0\]: permit"):
        parse_directory({"extensions": [{"ext": "1001", "owner": "A", "permit": permit}]})


# --- TLS and SRTP --------------------------------------------------------------------------------------
def test_no_tls_transport_without_a_certificate(tmp_path: Path) -> None:
    files = rendered(config(tmp_path), tmp_path)

    assert set(of_type(pjsip(files), "transport")) == {"transport-udp"}
    assert not (tmp_path / "etc" / "sip-tls.key").exists()


def test_a_certificate_turns_on_the_tls_transport_with_private_copies_of_the_files(tmp_path: Path) -> None:
    cert, key = tls_files(tmp_path)
    cfg = config(tmp_path, tls_cert=cert, tls_key=key, tls_port=5071)

    files = rendered(cfg, tmp_path)

    tls = of_type(pjsip(files), "transport")["transport-tls"]
    assert (tls.get("protocol"), tls.get("bind")) == ("tls", f"127.0.0.1:{5071}")
    assert tls.get("method") == "sslv23"  # PJSIP's default would be TLS 1.0 only
    # the chroot cannot see the original paths: copies beside the config, not world-readable
    assert tls.get("cert_file") == f"{cfg.root_in_chroot}/etc/sip-tls.crt"
    assert tls.get("priv_key_file") == f"{cfg.root_in_chroot}/etc/sip-tls.key"
    copied = tmp_path / "etc" / "sip-tls.key"
    assert copied.read_bytes() == key.read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o640
    # requests to a phone go the way it registered: no endpoint is pinned to UDP
    assert all(s.get("transport") is None for s in of_type(pjsip(files), "endpoint").values())
    assert cfg.phones()["tls_port"] == 5071


def test_tls_needs_both_files_and_a_readable_certificate(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="go together"):
        sip_settings({"AIPBX_SIP_TLS_CERT": "/etc/ssl/pbx.pem"})
    cfg = config(tmp_path, tls_cert=tmp_path / "missing.pem", tls_key=tmp_path / "missing.key")

    with pytest.raises(AsteriskError, match="missing.pem"):
        render(cfg, tmp_path / "etc")


def test_srtp_extensions_require_encrypted_media_and_tls(tmp_path: Path) -> None:
    cert, key = tls_files(tmp_path)
    cfg = config(tmp_path, tls_cert=cert, tls_key=key)
    cfg.directory = parse_directory({"extensions": [TWO[0], {**TWO[1], "srtp": True}]})

    files = rendered(cfg, tmp_path)

    remote = endpoint(files, "1002")
    assert remote.get("media_encryption") == "sdes"
    assert remote.get("media_encryption_optimistic") == "no"  # no silent fallback to plain RTP
    assert endpoint(files, "1001").get("media_encryption") is None
    assert cfg.phones()["extensions"][1]["srtp"] is True

    cfg.tls_cert = cfg.tls_key = None
    with pytest.raises(AsteriskError, match="extension 1002 has srtp: true, which needs the TLS transport"):
        render(cfg, tmp_path / "etc2")
    with pytest.raises(DirectoryError, match="srtp must be true or false"):
        parse_directory({"extensions": [{**TWO[1], "srtp": "yes"}]})


# --- NAT -----------------------------------------------------------------------------------------------
def test_behind_nat_every_transport_advertises_the_public_address_outside_the_local_nets(tmp_path: Path) -> None:
    cert, key = tls_files(tmp_path)
    settings = sip_settings(
        {"AIPBX_SIP_EXTERNAL_ADDRESS": "203.0.113.10", "AIPBX_SIP_LOCAL_NET": "192.168.1.0/24, 10.8.0.0/16"}
    )
    cfg = config(tmp_path, **{**settings, "tls_cert": cert, "tls_key": key})

    transports = of_type(pjsip(rendered(cfg, tmp_path)), "transport")

    assert set(transports) == {"transport-udp", "transport-tls"}
    for transport in transports.values():
        assert transport.get("external_media_address") == "203.0.113.10"
        assert transport.get("external_signaling_address") == "203.0.113.10"
        assert transport.all("local_net") == ["192.168.1.0/24", "10.8.0.0/16"]


def test_no_nat_options_by_default_and_local_net_alone_is_an_error(tmp_path: Path) -> None:
    transports = of_type(pjsip(rendered(config(tmp_path), tmp_path)), "transport")
    assert transports["transport-udp"].get("external_media_address") is None

    with pytest.raises(SettingsError, match="only matters with AIPBX_SIP_EXTERNAL_ADDRESS"):
        sip_settings({"AIPBX_SIP_LOCAL_NET": "192.168.1.0/24"})
    with pytest.raises(SettingsError, match="'192.168.1.300/24' is not a network"):
        sip_settings({"AIPBX_SIP_EXTERNAL_ADDRESS": "pbx.example.com", "AIPBX_SIP_LOCAL_NET": "192.168.1.300/24"})


def test_the_container_reads_the_same_settings(tmp_path: Path) -> None:
    env = {
        "AIPBX_EXTENSIONS_FILE": str(Path(__file__).resolve().parents[2] / "asterisk" / "extensions.yaml"),
        "AIPBX_ARI_PASSWORD": "x" * 20,
        **{f"AIPBX_SIP_PASSWORD_{n}": "y" * 20 for n in range(1001, 1005)},
        "AIPBX_SIP_TLS_CERT": "/run/tls/fullchain.pem",
        "AIPBX_SIP_TLS_KEY": "/run/tls/privkey.pem",
        "AIPBX_SIP_EXTERNAL_ADDRESS": "203.0.113.10",
        "AIPBX_SIP_RTP_TIMEOUT": "30",
    }

    cfg = asterisk_config(env)

    assert (cfg.tls_cert, cfg.tls_port, cfg.external_address, cfg.rtp_timeout) == (
        Path("/run/tls/fullchain.pem"),
        5061,
        "203.0.113.10",
        30,
    )


# --- fail2ban ------------------------------------------------------------------------------------------
def test_the_production_jail_reads_the_security_log_with_the_shipped_filter_and_bans_every_port(tmp_path: Path) -> None:
    cfg = config(tmp_path)

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(fail2ban.jail_config(fail2ban.security_log(cfg)))

    assert parser.sections() == ["aipbx-sip"]
    jail = parser["aipbx-sip"]
    assert jail.get("enabled") == "true"
    assert jail.get("logpath") == str(cfg.root_on_host / "log" / "security.log")
    assert jail.get("filter") == "aipbx-asterisk" and fail2ban.FILTER_FILE.name == "aipbx-asterisk.conf"
    assert jail.get("action") == "iptables-allports[name=aipbx-sip, protocol=all]"
    assert int(jail.get("maxretry", "0")) >= 3


def test_the_edge_jail_reads_the_edge_log_with_its_own_filter_and_bans_every_port(tmp_path: Path) -> None:
    logpath = tmp_path / "edge" / "log" / "kamailio.log"

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(fail2ban.jail_config(logpath, source=fail2ban.EDGE))

    assert parser.sections() == ["aipbx-sip-edge"]  # beside the Asterisk jail, not instead of its name
    jail = parser["aipbx-sip-edge"]
    assert jail.get("logpath") == str(logpath)
    assert jail.get("filter") == "aipbx-kamailio" and fail2ban.EDGE.filter_file.is_file()
    assert jail.get("action") == "iptables-allports[name=aipbx-sip-edge, protocol=all]"
