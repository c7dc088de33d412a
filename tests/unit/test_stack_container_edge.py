"""The compose edge profile as rendered configuration (stack.container_edge, stack.cluster.compose_*): the
Asterisk container as node 1 behind the edge, and the edge container's Kamailio. No process, no Docker."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.config import REPO
from stack.container import ContainerError, asterisk_config, read_secrets, render_asterisk, setup
from stack.container_edge import edge_of, node_index
from stack.kamailio import Kamailio
from stack.kamailio import render as render_edge
from stack.selfsigned import _expires


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    """Every secret the set-up writes, and where the containers find extensions.yaml."""
    (tmp_path / "asterisk").mkdir()
    shutil.copy(REPO / "asterisk" / "extensions.yaml", tmp_path / "asterisk" / "extensions.yaml")
    setup(tmp_path)
    return {
        **read_secrets(tmp_path / "secrets"),
        "AIPBX_EXTENSIONS_FILE": str(tmp_path / "asterisk" / "extensions.yaml"),
        "AIPBX_SIP_PORT": "5070",
        "AIPBX_HTTP_PORT": "8188",
        "AIPBX_INSTANCE": "site1",
    }


def test_with_aipbx_node_the_asterisk_container_is_node_1_behind_the_edge(secrets, tmp_path: Path) -> None:
    env = {**secrets, "AIPBX_NODE": "1", "AIPBX_SIP_BIND": "127.0.0.1"}

    cfg = asterisk_config(env)
    render_asterisk(env, tmp_path / "etc")

    # it listens on node 1's address with the deployment's SIP port (the edge holds 127.0.0.1's) ...
    assert (cfg.sip_bind, cfg.sip_port, cfg.edge) == ("127.0.0.2", 5070, ("127.0.0.1", 5070))
    # ... keeps the deployment's ARI port and app (the ariapp container beside it is unchanged) and RTP range
    assert (cfg.http_port, cfg.ari_app, cfg.rtp_start, cfg.rtp_end) == (8188, "aipbx", 10000, 19999)
    assert cfg.name == "site1-n1" and cfg.instance == "site1"  # call ids name the node; one console
    pjsip = (tmp_path / "etc" / "pjsip.conf").read_text()
    dialplan = (tmp_path / "etc" / "extensions.conf").read_text()
    assert "bind = 127.0.0.2:5070" in pjsip and "match = 127.0.0.1" in pjsip
    assert "endpoint_identifier_order = ip" in pjsip and "[1001-auth]" not in pjsip  # no phone registers here
    assert "Dial(PJSIP/${ARG1}@edge," in dialplan
    assert "CURL(http://127.0.0.1:5072/registered/${ARG1})" in dialplan  # the edge's registration lookup


def test_on_every_interface_node_1_offers_this_host_s_lan_address_for_media(secrets) -> None:
    from stack.config import primary_ip

    cfg = asterisk_config({**secrets, "AIPBX_NODE": "1"})  # AIPBX_SIP_BIND: 0.0.0.0

    assert cfg.sip_bind == "127.0.0.2" and cfg.media_address == primary_ip()


def test_without_aipbx_node_asterisk_takes_the_phones_itself(secrets) -> None:
    cfg = asterisk_config(secrets)

    assert cfg.edge is None and cfg.sip_bind == "0.0.0.0" and cfg.name == "site1"


@pytest.mark.parametrize("value", ["0", "one", "-1"])
def test_aipbx_node_is_a_number_from_1(secrets, value: str) -> None:
    with pytest.raises(ValueError, match="AIPBX_NODE"):
        node_index({"AIPBX_NODE": value})
    with pytest.raises(ContainerError, match="AIPBX_NODE"):
        asterisk_config({**secrets, "AIPBX_NODE": value})


def test_a_node_number_beyond_the_listed_nodes_is_refused(secrets) -> None:
    with pytest.raises(ContainerError, match="AIPBX_NODE=2"):
        asterisk_config({**secrets, "AIPBX_NODE": "2"})


def test_the_edge_dispatches_to_node_1_and_keeps_its_database_in_compose_s_postgres(secrets) -> None:
    env = {**secrets, "AIPBX_NODE": "1", "AIPBX_SIP_BIND": "127.0.0.1", "AIPBX_POSTGRES_PORT": "15432"}

    edge = edge_of(env)

    assert edge.listen == ("127.0.0.1",) and edge.port == 5070 and edge.tls_port == 5061
    assert edge.nodes == [("127.0.0.2", 5070)]
    assert edge.lookup == ("127.0.0.1", 5072)  # what node 1's dialplan asks (above)
    assert edge.name == "site1" and edge.db_name == "aipbx_edge_site1"
    assert (
        edge.db_url == f"postgres://aipbx_edge_site1:{env['AIPBX_EDGE_DB_PASSWORD']}@127.0.0.1:15432/aipbx_edge_site1"
    )
    # made by the compose database's owner (its password comes as PGPASSWORD, never in the conninfo)
    assert edge.admin_conninfo == ("host=127.0.0.1 port=15432 user=aipbx dbname=aipbx",)
    assert edge.subscribers == {ext: env[f"AIPBX_SIP_PASSWORD_{ext}"] for ext in ("1001", "1002", "1003", "1004")}
    assert edge.var_dir == Path("/var/lib/aipbx/edge")  # compose.yaml's edge-state volume


def test_nodes_on_other_hosts_are_listed_by_address(secrets) -> None:
    env = {
        **secrets,
        "AIPBX_NODE": "1",
        "AIPBX_NODE_ADDRESSES": "10.0.0.11,10.0.0.12",
        "AIPBX_EDGE_NODE_ADDRESS": "10.0.0.10",
    }

    edge = edge_of(env)
    second = asterisk_config({**env, "AIPBX_NODE": "2"})  # the same .env on the second host, but AIPBX_NODE

    assert edge.nodes == [("10.0.0.11", 5070), ("10.0.0.12", 5070)]
    assert edge.address == ("10.0.0.10", 5070) and "10.0.0.10" in edge.listen
    assert (second.sip_bind, second.edge, second.name) == ("10.0.0.12", ("10.0.0.10", 5070), "site1-n2")
    assert second.edge_lookup_url == "http://10.0.0.10:5072/registered"
    assert second.media_address == ""  # its own LAN address: phones reach it directly for media


def test_the_edge_refuses_to_start_while_asterisk_would_hold_the_sip_port(secrets) -> None:
    with pytest.raises(ContainerError, match="AIPBX_NODE=1"):
        edge_of(secrets)


def test_the_edge_refuses_to_start_without_its_secrets(secrets) -> None:
    env = {**secrets, "AIPBX_NODE": "1"}
    del env["POSTGRES_PASSWORD"]

    with pytest.raises(ContainerError, match="POSTGRES_PASSWORD"):
        edge_of(env)


def test_the_edge_container_s_kamailio_config_parses_and_its_command_carries_no_secret(secrets, tmp_path) -> None:
    env = {**secrets, "AIPBX_NODE": "1", "AIPBX_SIP_BIND": "127.0.0.1"}
    edge = edge_of(env)
    edge.var_dir = tmp_path / "edge"

    (path,) = render_edge(edge)
    command = Kamailio(edge).command(("kamailio", "kamailio", 1, 1))

    check = subprocess.run(["kamailio", "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "listen=udp:127.0.0.1:5070" in path.read_text() and "listen=tls:127.0.0.1:5061" in path.read_text()
    assert command[:3] == ["kamailio", "-f", str(path)] and "-DD" in command and "-E" in command
    assert command[-4:] == ["-u", "kamailio", "-g", "kamailio"]  # drops root once its ports are bound
    assert not any(secret in " ".join(command) for secret in read_secrets_values(env))


def read_secrets_values(env: dict[str, str]) -> list[str]:
    return [value for name, value in env.items() if "PASSWORD" in name]


def test_a_certificate_s_expiry_is_read_with_debian_12_s_cryptography_too() -> None:
    class Old:  # cryptography < 42: naive UTC, no not_valid_after_utc
        not_valid_after = datetime.datetime(2030, 1, 2, 3, 4, 5)

    class New:
        not_valid_after_utc = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

    assert _expires(Old()) == _expires(New()) == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
