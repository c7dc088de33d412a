"""Tests for stack.container: the set-up helper's secrets, the Asterisk container's configuration, the
entrypoint's secret loading and the health probes (no Docker needed)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aipbx.sealing import Keyring
from stack.config import REPO, read_env_file
from stack.container import (
    SETTINGS,
    SHARES,
    ContainerError,
    asterisk_config,
    probe,
    read_secrets,
    render_asterisk,
    setup,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "asterisk").mkdir()
    shutil.copy(REPO / "asterisk" / "extensions.yaml", tmp_path / "asterisk" / "extensions.yaml")
    return tmp_path


def container_env(root: Path) -> dict[str, str]:
    """What the Asterisk container's process sees: its settings and the secrets Compose gives it."""
    secrets = read_secrets(root / "secrets")
    return {
        "AIPBX_EXTENSIONS_FILE": str(root / "asterisk" / "extensions.yaml"),
        "AIPBX_ARI_PASSWORD": secrets["AIPBX_ARI_PASSWORD"],
        **{k: v for k, v in secrets.items() if k.startswith("AIPBX_SIP_PASSWORD_")},
    }


def test_setup_writes_one_private_file_per_secret_and_the_settings(checkout: Path) -> None:
    added = setup(checkout)

    secrets = checkout / "secrets"
    assert mode(secrets) == 0o700 and mode(checkout / ".env") == 0o600
    assert {mode(p) for p in secrets.iterdir()} == {0o600}
    names = {p.name for p in secrets.iterdir()}
    assert names == {
        "AIPBX_ARI_PASSWORD",
        "DJANGO_SECRET_KEY",
        "AIPBX_CONSOLE_ADMIN_PASSWORD",
        "AIPBX_RECORDINGS_KEYS",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "sip_passwords.env",
        "AIPBX_REDIS_PASSWORD",
        "AIPBX_CHROMA_TOKEN",
        "AIPBX_EDGE_DB_PASSWORD",  # the Kamailio edge's database login (profile edge)
        "redis_users.acl",
    }
    values = read_secrets(secrets)
    assert {f"AIPBX_SIP_PASSWORD_{ext}" for ext in ("1001", "1002", "1003", "1004")} <= set(values)
    assert Keyring.from_env(values) is not None  # a usable master key
    assert len(set(values.values())) == len(values)  # all different
    assert read_env_file(checkout / ".env") == SETTINGS
    assert "secrets/DJANGO_SECRET_KEY" in added
    assert not any(name in (checkout / ".env").read_text() for name in values)  # no secret in .env


def test_setup_keeps_what_exists_and_adds_a_new_extensions_password(checkout: Path) -> None:
    setup(checkout)
    before = read_secrets(checkout / "secrets")
    (checkout / ".env").write_text("AIPBX_SIP_PORT=5070\n")
    yaml_path = checkout / "asterisk" / "extensions.yaml"
    yaml_path.write_text(yaml_path.read_text() + '  - ext: "1005"\n    owner: "Sales"\n')

    added = setup(checkout)

    after = read_secrets(checkout / "secrets")
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"AIPBX_SIP_PASSWORD_1005"}
    assert read_env_file(checkout / ".env")["AIPBX_SIP_PORT"] == "5070"
    assert "secrets/sip_passwords.env: AIPBX_SIP_PASSWORD_1005" in added
    assert setup(checkout) == []


def test_the_asterisk_container_renders_its_config_from_its_environment(checkout: Path) -> None:
    setup(checkout)
    env = {
        **container_env(checkout),
        "AIPBX_SIP_PORT": "5070",
        "AIPBX_HTTP_PORT": "8188",
        "AIPBX_RTP_START": "12000",
        "AIPBX_RTP_END": "12400",
        "AIPBX_INSTANCE": "site1",
    }

    render_asterisk(env, checkout / "etc")

    etc = checkout / "etc"
    pjsip = (etc / "pjsip.conf").read_text()
    assert "bind = 0.0.0.0:5070" in pjsip and f"password = {env['AIPBX_SIP_PASSWORD_1003']}" in pjsip
    assert f"password = {env['AIPBX_ARI_PASSWORD']}" in (etc / "ari.conf").read_text()
    assert "bindaddr = 127.0.0.1" in (etc / "http.conf").read_text()
    assert "bindport = 8188" in (etc / "http.conf").read_text()
    assert "rtpstart = 12000" in (etc / "rtp.conf").read_text()
    asterisk_conf = (etc / "asterisk.conf").read_text()
    assert f"astetcdir => {etc}" in asterisk_conf and "systemname = site1" in asterisk_conf
    assert "/var/spool/aipbx/recordings" in (etc / "extensions.conf").read_text()
    logger = (etc / "logger.conf").read_text()
    assert "console => [json]notice,warning,error" in logger and "messages.log" not in logger


def test_the_asterisk_container_refuses_to_start_without_a_password(checkout: Path) -> None:
    setup(checkout)
    env = container_env(checkout)
    del env["AIPBX_SIP_PASSWORD_1002"]

    with pytest.raises(ContainerError, match="AIPBX_SIP_PASSWORD_1002"):
        asterisk_config(env)


def test_the_asterisk_config_carries_only_the_pbx_secrets(checkout: Path) -> None:
    setup(checkout)
    everything = read_secrets(checkout / "secrets")  # even if a container were given all of them
    cfg = asterisk_config({**everything, "AIPBX_EXTENSIONS_FILE": str(checkout / "asterisk" / "extensions.yaml")})
    assert set(cfg.secrets) == {
        "AIPBX_ARI_PASSWORD",
        *(f"AIPBX_SIP_PASSWORD_{e}" for e in ("1001", "1002", "1003", "1004")),
    }


def test_read_secrets_takes_file_names_as_variables_and_env_files_as_lines(tmp_path: Path) -> None:
    (tmp_path / "DJANGO_SECRET_KEY").write_text("s3cret\n")
    (tmp_path / "sip_passwords.env").write_text("# comment\nAIPBX_SIP_PASSWORD_1001=a=b\n\n")
    (tmp_path / "subdir").mkdir()

    assert read_secrets(tmp_path) == {"DJANGO_SECRET_KEY": "s3cret", "AIPBX_SIP_PASSWORD_1001": "a=b"}
    assert read_secrets(tmp_path / "missing") == {}


def test_exec_runs_the_command_with_the_secrets_in_its_environment(tmp_path: Path) -> None:
    (tmp_path / "PGPASSWORD").write_text("pw\n")
    env = {**os.environ, "AIPBX_SECRETS_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}

    result = subprocess.run(
        [sys.executable, "-m", "stack.container", "exec", "sh", "-c", 'echo "[$PGPASSWORD]"'],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout == "[pw]\n"


def test_probe_http_passes_on_200_only() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200 if self.path == "/ready" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert probe(["http", f"{base}/ready"], {})
        assert not probe(["http", f"{base}/other"], {})
    finally:
        server.shutdown()
    with pytest.raises(ContainerError):
        probe(["nothing"], {})


def test_setup_hands_each_group_its_share_only_readable_by_it(checkout: Path) -> None:
    shares = checkout / "shares"
    for group in SHARES:
        (shares / group).mkdir(parents=True)
    (shares / "asterisk" / "DJANGO_SECRET_KEY").write_text("left over from an older layout")

    setup(checkout, shares)

    everything = read_secrets(checkout / "secrets")
    asterisk = read_secrets(shares / "asterisk")
    assert set(asterisk) == {
        "AIPBX_ARI_PASSWORD",
        *(f"AIPBX_SIP_PASSWORD_{e}" for e in ("1001", "1002", "1003", "1004")),
    }
    assert asterisk["AIPBX_ARI_PASSWORD"] == everything["AIPBX_ARI_PASSWORD"]
    console = read_secrets(shares / "console")
    assert console["PGPASSWORD"] == everything["POSTGRES_PASSWORD"]
    assert "AIPBX_ARI_PASSWORD" not in console and "AIPBX_SIP_PASSWORD_1001" not in console
    assert read_secrets(shares / "postgres") == {"POSTGRES_PASSWORD": everything["POSTGRES_PASSWORD"]}
    for group in SHARES:
        assert mode(shares / group) == 0o500 and {mode(p) for p in (shares / group).iterdir()} == {0o400}
    if os.geteuid() == 0:  # as in the setup container: each share belongs to the user that reads it
        assert {(shares / g).stat().st_uid for g in ("asterisk", "ariapp", "console")} == {10001}
        assert (shares / "postgres" / "POSTGRES_PASSWORD").stat().st_uid == 999
        assert (shares / "edge").stat().st_uid == 0  # root: Kamailio itself runs as kamailio and cannot read it
    # the edge: its own login, the database owner's to create it, and the passwords it checks phones against
    assert set(read_secrets(shares / "edge")) == {
        "AIPBX_EDGE_DB_PASSWORD",
        "POSTGRES_PASSWORD",
        *(f"AIPBX_SIP_PASSWORD_{e}" for e in ("1001", "1002", "1003", "1004")),
    }
