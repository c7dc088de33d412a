"""compose.yaml and the images, read as a reviewer would: what `docker compose up asterisk ariapp web`
pulls in, who gets which secret, health checks, volumes, ports from .env. The compose test
(tests/docker, `make test-docker`) runs the same file for real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stack.config import REPO
from stack.container import SETTINGS, SHARES, setup

COMPOSE_TEXT = (REPO / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DEFAULT = {name for name, svc in SERVICES.items() if not svc.get("profiles")}
ONE_SHOT = {"migrate", "setup"}


def needs(names: tuple[str, ...]) -> set[str]:
    """Every service `docker compose up NAMES` starts (depends_on, transitively)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += list(SERVICES[name].get("depends_on") or [])
    return seen


def mounts(service: str) -> dict[str, str]:
    """Named volume (or host path) -> where it is mounted, for one service."""
    return dict(v.split("#")[0].strip().split(":")[:2] for v in SERVICES[service].get("volumes", []))


def secrets_of(service: str) -> set[str]:
    """The file names in a service's /run/secrets: its group's share (stack.container.SHARES)."""
    volume = {target: source for source, target in mounts(service).items()}.get("/run/secrets")
    if volume is None:
        return set()
    return set(SHARES[volume.removeprefix("secrets-")][1])


def test_the_design_cards_three_services_pull_in_what_they_need_and_not_the_worker() -> None:
    assert needs(("asterisk", "ariapp", "web")) == {
        "asterisk",
        "ariapp",
        "web",
        "postgres",
        "redis",
        "chroma",
        "events",
        "migrate",
        "setup",
    }
    assert DEFAULT == needs(("asterisk", "ariapp", "web")) | {"worker", "worker-long", "beat"}
    assert {name for name, svc in SERVICES.items() if "monitoring" in svc.get("profiles", [])} == {
        "prometheus",
        "grafana",
    }


def test_asterisk_gets_the_pbx_secrets_only() -> None:
    assert secrets_of("asterisk") == {"AIPBX_ARI_PASSWORD", "sip_passwords.env"}
    env = " ".join(f"{k}={v}" for k, v in SERVICES["asterisk"]["environment"].items())
    for name in ("DJANGO_SECRET_KEY", "RECORDINGS_KEYS", "PGPASSWORD", "POSTGRES_PASSWORD", "API_KEY"):
        assert name not in env
    assert not any("env_file" in svc for svc in SERVICES.values())  # never the whole .env


def test_secrets_go_where_they_are_needed_and_every_group_is_filled_first() -> None:
    assert secrets_of("ariapp") == {
        "AIPBX_ARI_PASSWORD",
        "AIPBX_RECORDINGS_KEYS",
        "AIPBX_REDIS_PASSWORD",
        "AIPBX_CHROMA_TOKEN",
    }
    for service in ("web", "events", "worker", "beat", "migrate"):
        assert secrets_of(service) == {
            "DJANGO_SECRET_KEY",
            "AIPBX_RECORDINGS_KEYS",
            "PGPASSWORD",
            "AIPBX_REDIS_PASSWORD",
            "AIPBX_CONSOLE_ADMIN_PASSWORD",
            "AIPBX_CHROMA_TOKEN",
        }, service
    assert secrets_of("postgres") == {"POSTGRES_PASSWORD"}
    assert secrets_of("redis") == {"users.acl"}  # password hashes only
    assert secrets_of("chroma") == {"AIPBX_CHROMA_TOKEN"}  # and nothing else: it holds no other secret
    shares = {f"secrets-{group}": f"/run/shares/{group}" for group in SHARES}
    assert {k: v for k, v in mounts("setup").items() if k.startswith("secrets-")} == shares
    for service in DEFAULT | {"grafana"}:
        if secrets_of(service):
            assert "setup" in needs((service,)) and service != "setup", service
            assert all(v.endswith(":ro") for v in SERVICES[service]["volumes"] if "/run/secrets" in v), service


def test_every_secret_file_is_written_by_the_setup_helper(tmp_path) -> None:
    (tmp_path / "asterisk").mkdir()
    (tmp_path / "asterisk" / "extensions.yaml").write_text((REPO / "asterisk" / "extensions.yaml").read_text())
    for group in SHARES:
        (tmp_path / "shares" / group).mkdir(parents=True)
    setup(tmp_path, tmp_path / "shares")
    for group, (_uid, files) in SHARES.items():
        assert sorted(p.name for p in (tmp_path / "shares" / group).iterdir()) == sorted(files), group
    # the official images read these two from files named in their environment
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    assert (
        SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/GRAFANA_ADMIN_PASSWORD"
    )


def test_settings_defaults_agree_with_the_setup_helper_and_cover_every_port() -> None:
    defaults = dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", COMPOSE_TEXT))
    for name, value in SETTINGS.items():
        assert defaults.get(name) == value, name
    ports = {name for name in defaults if name.endswith("_PORT")}
    assert ports <= set(SETTINGS)
    assert not re.search(r":(5060|5432|6379|8000|8001|8088|8090)\b", COMPOSE_TEXT.replace(":-", "")), (
        "a port written into compose.yaml instead of read from .env"
    )


def test_every_long_running_service_is_healthy_restarts_and_logs_with_limits() -> None:
    for name in DEFAULT - ONE_SHOT:
        svc = SERVICES[name]
        assert svc["network_mode"] == "host", name
        assert svc["restart"] == "unless-stopped", name
        assert svc["healthcheck"]["test"], name
        assert svc["logging"]["options"]["max-size"], name
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("web", "events", "worker", "worker-long", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_named_volumes_are_shared_by_every_service_that_needs_the_files() -> None:
    for service in ("asterisk", "ariapp", "web", "worker"):
        assert "recordings" in mounts(service), service
    for service in ("ariapp", "web", "worker", "worker-long"):
        assert mounts(service)["recordings"] == "/var/lib/aipbx/recordings", service
        assert mounts(service)["cdr"] == "/var/lib/aipbx/cdr", service
    assert mounts("postgres")["pgdata"] == "/var/lib/postgresql/data"
    assert mounts("redis")["redisdata"] == "/data"
    assert set(COMPOSE["volumes"]) >= {"pgdata", "redisdata", "recordings", "cdr", "chroma"}


def test_images_run_as_non_root_users_without_test_tools() -> None:
    app = (REPO / "docker" / "Dockerfile").read_text()
    asterisk = (REPO / "docker" / "asterisk" / "Dockerfile").read_text()
    assert "\nUSER aipbx\n" in app and "\nUSER asterisk\n" in asterisk
    assert app.count("FROM ") >= 2  # a build stage, then the runtime
    assert "# syntax=" not in app + asterisk  # BuildKit's own frontend: nothing pulled to parse a Dockerfile
    requirements = (REPO / "requirements.txt").read_text()
    assert "\n# Tests\n" in requirements
    runtime = requirements.split("\n# Tests\n", 1)[0].lower()
    for tool in ("pytest", "hypothesis", "schemathesis", "playwright", "ruff", "time-machine"):
        assert f"\n{tool}" not in runtime, tool
    ignored = (REPO / ".dockerignore").read_text().split()
    for path in ("tests", "bench", "softphone", ".env", "secrets", ".git"):
        assert path in ignored, path


def test_every_queue_has_a_worker_and_webhooks_do_not_share_one_with_imports() -> None:
    from aipbx.queues import long_queue, worker_queues

    def queues(service: str) -> list[str]:
        command = SERVICES[service]["command"]
        return command[command.index("-Q") + 1].split(",")

    assert queues("worker") == ["aipbx"] and queues("worker-long") == [long_queue("aipbx")]
    assert sorted(queues("worker") + queues("worker-long")) == sorted(worker_queues("aipbx"))
    assert (
        SERVICES["worker-long"]["environment"]["AIPBX_WORKER_METRICS_PORT"]
        != SERVICES["worker"]["environment"]["AIPBX_WORKER_METRICS_PORT"]
    )


def test_the_knowledge_store_is_the_authenticating_server_and_its_health_check_needs_no_token() -> None:
    chroma = SERVICES["chroma"]
    command = " ".join(chroma["command"])
    # the Python server with its token check (knowledge.retrieval.chroma_serve), not `chroma run`, which has none
    assert "python -m knowledge.retrieval.chroma_serve --path /var/lib/aipbx/chroma --host 127.0.0.1" in command
    assert "chroma run" not in command
    assert chroma["depends_on"]["setup"]["condition"] == "service_completed_successfully"  # its token first
    # the heartbeat is the one path the server leaves open
    assert "/api/v2/heartbeat" in " ".join(chroma["healthcheck"]["test"])
    app_requirements = (REPO / "requirements.txt").read_text().split("\n# Tests\n", 1)[0]
    for package in ("chromadb==", "fastapi==", "opentelemetry-instrumentation-fastapi==", "uvicorn=="):
        assert f"\n{package}" in app_requirements, package  # the image installs what the command runs


def copied_files(dockerfile: Path, target: Path) -> int:
    """Copy what ``dockerfile``'s COPY lines put under /opt/aipbx into ``target``; returns how many sources."""
    copied = 0
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        parts = line.split()
        if parts[:1] != ["COPY"] or not parts[-1].startswith("/opt/aipbx/"):
            continue
        into = target / parts[-1].removeprefix("/opt/aipbx/")
        for source in parts[1:-1]:
            path = REPO / source
            if path.is_dir():
                shutil.copytree(path, into, dirs_exist_ok=True)
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, into / path.name)
            copied += 1
    return copied


@pytest.mark.parametrize(
    ("dockerfile", "modules", "packages"),
    [
        # Asterisk, also as a node behind the edge (stack.cluster, stack.container_edge)
        ("docker/asterisk/Dockerfile", "stack.container, stack.asterisk, stack.config, stack.cluster", ()),
        # the edge: its renderer, its database (psycopg) and self-signed certificate, from Debian packages
        (
            "docker/edge/Dockerfile",
            "stack.container, stack.container_edge, stack.cluster, stack.kamailio, stack.selfsigned, psycopg",
            ("psycopg", "psycopg_binary", "psycopg_c", "typing_extensions"),
        ),
    ],
)
def test_the_renderer_images_run_from_the_files_they_copy_alone(
    tmp_path: Path, dockerfile: str, modules: str, packages: tuple[str, ...]
) -> None:
    # The Asterisk and edge images carry only the renderer's files (their COPY lines), not the repository:
    # an import of anything else kills the container at start and compose reports it "unhealthy".
    assert copied_files(REPO / dockerfile, tmp_path) >= 5
    # python -I: no site-packages but the interpreter's own, no repository on the path; PyYAML and
    # cryptography (and the edge's psycopg) come from the image's Debian packages, so the check lets those through.
    probe = (
        "import json, sys; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); sys.path.extend(sys.argv[2:]);"
        f"import {modules};"
        "mods = {m.split('.')[0] for m in set(sys.modules) - before if getattr(sys.modules[m], '__file__', None)"
        " and sys.argv[1] not in (sys.modules[m].__file__ or '') and 'site-packages' in sys.modules[m].__file__};"
        "print(json.dumps(sorted(mods)))"
    )
    import cryptography
    import psycopg

    deps = {str(Path(module.__file__).parents[1]) for module in (yaml, cryptography, psycopg)}
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path), *sorted(deps)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outside = set(json.loads(result.stdout)) - {"yaml", "_yaml", "cryptography", "cffi", "_cffi_backend", *packages}
    assert not outside, f"{dockerfile}'s renderer imports {outside}, which the image does not install"


def test_the_edge_profile_adds_kamailio_in_front_of_asterisk_with_its_own_secrets() -> None:
    edge = SERVICES["edge"]
    assert edge["profiles"] == ["edge"] and "edge" not in DEFAULT
    assert needs(("edge",)) == {"edge", "setup", "postgres"}  # its database is the postgres service's
    assert edge["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert edge["network_mode"] == "host" and edge["restart"] == "unless-stopped" and edge["healthcheck"]["test"]
    assert edge["build"]["dockerfile"] == "docker/edge/Dockerfile"
    # the phones' SIP settings are the ones Asterisk would otherwise use; both know which node it is
    for name in ("AIPBX_SIP_BIND", "AIPBX_SIP_PORT", "AIPBX_SIP_TLS_PORT", "AIPBX_NODE", "AIPBX_NODE_ADDRESSES"):
        assert edge["environment"][name] == SERVICES["asterisk"]["environment"][name], name
    assert secrets_of("edge") == {"AIPBX_EDGE_DB_PASSWORD", "POSTGRES_PASSWORD", "sip_passwords.env"}
    assert SHARES["edge"][0] == 0  # root's: Kamailio drops to its own user and cannot read them
    assert all(v.endswith(":ro") for v in edge["volumes"] if "/run/secrets" in v)
    # the same base image as the app's (Debian 12), with Debian's Kamailio and the modules the edge loads
    dockerfile = (REPO / "docker" / "edge" / "Dockerfile").read_text()
    assert "\nFROM python:3.11-slim-bookworm\n" in dockerfile
    for package in ("kamailio", "kamailio-postgres-modules", "kamailio-tls-modules", "python3-psycopg"):
        assert f" {package} " in dockerfile.replace("\n", " "), package
