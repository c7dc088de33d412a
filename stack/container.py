"""What the containers of ``compose.yaml`` run around the apps: ``python -m stack.container COMMAND``.

    setup     the one-shot that every ``docker compose up`` runs first: writes each missing
              per-install secret into ``secrets/`` (one file each, made like ``make up`` makes them)
              and the missing settings into ``.env``, then hands each group of services its share of
              the secrets (below). Keeps what exists.
    asterisk  renders Asterisk's configuration from the environment and the container's secrets with
              the renderer of ``make up`` (``asterisk/extensions.yaml`` is the one source), then runs
              Asterisk in the foreground. With ``AIPBX_NODE`` set (profile ``edge``) it is that node
              behind the Kamailio edge (``stack.container_edge``).
    edge      the Kamailio edge's container (profile ``edge``): its database, kamailio.cfg, then
              Kamailio in the foreground (``stack.container_edge``).
    exec      loads the container's secrets into the environment, then runs the command (the app
              image's entrypoint; health checks that import Django use it too).
    probe     health checks: ``ari`` (Asterisk answers ARI with its credentials), ``http URL`` (200),
              ``postgres``, ``redis`` (reachable with the service's URL and password), ``edge``
              (Kamailio answers on its control socket).

Secrets reach a container as files in ``/run/secrets``: a file's name is the variable it sets, and a
``*.env`` file holds ``KEY=VALUE`` lines (the SIP passwords, one per extension, whose number only
``extensions.yaml`` knows). Each group of services (:data:`SHARES`) mounts its own named volume
there, which ``setup`` fills with that group's files only, readable by that group's user only. So
Asterisk never holds the recordings key, the Django secret or the database password, and a fresh
clone needs no step before ``docker compose up``.

This module is imported by the Asterisk and edge images (with only ``stack`` and two pure modules of
the shared core, ``aipbx.directory`` and ``aipbx.sealing``, beside it) and runs as every container's PID 1 before
``exec``: it imports little at the top.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SECRETS_DIR = Path(os.environ.get("AIPBX_SECRETS_DIR", "/run/secrets"))  # a container's share
ASTERISK_ETC = Path("/etc/asterisk")
SIP_PASSWORDS_FILE = "sip_passwords.env"
REDIS_ACL_FILE = "redis_users.acl"  # written by setup from AIPBX_REDIS_PASSWORD: password hashes, no password
APP_UID = 10001  # the app image's aipbx user and the Asterisk image's asterisk user

#: Each group of services, the uid its processes run as, and its share of ``secrets/``: file name in
#: its ``/run/secrets`` -> file in ``secrets/``. compose.yaml mounts volume ``secrets-<group>``.
SHARES: dict[str, tuple[int, dict[str, str]]] = {
    "asterisk": (APP_UID, {"AIPBX_ARI_PASSWORD": "AIPBX_ARI_PASSWORD", SIP_PASSWORDS_FILE: SIP_PASSWORDS_FILE}),
    "ariapp": (
        APP_UID,
        {
            "AIPBX_ARI_PASSWORD": "AIPBX_ARI_PASSWORD",
            "AIPBX_RECORDINGS_KEYS": "AIPBX_RECORDINGS_KEYS",
            "AIPBX_REDIS_PASSWORD": "AIPBX_REDIS_PASSWORD",
            "AIPBX_CHROMA_TOKEN": "AIPBX_CHROMA_TOKEN",
        },
    ),
    # web, events, worker, beat, migrate: one Django deployment (the admin password is migrate's).
    "console": (
        APP_UID,
        {
            "DJANGO_SECRET_KEY": "DJANGO_SECRET_KEY",
            "AIPBX_RECORDINGS_KEYS": "AIPBX_RECORDINGS_KEYS",
            "PGPASSWORD": "POSTGRES_PASSWORD",  # libpq's variable; the URL has no password
            "AIPBX_REDIS_PASSWORD": "AIPBX_REDIS_PASSWORD",  # added to the URL by environment()
            "AIPBX_CONSOLE_ADMIN_PASSWORD": "AIPBX_CONSOLE_ADMIN_PASSWORD",
            "AIPBX_CHROMA_TOKEN": "AIPBX_CHROMA_TOKEN",
        },
    ),
    "chroma": (APP_UID, {"AIPBX_CHROMA_TOKEN": "AIPBX_CHROMA_TOKEN"}),  # the knowledge store checks it
    "postgres": (999, {"POSTGRES_PASSWORD": "POSTGRES_PASSWORD"}),  # the official image's postgres user
    "redis": (999, {"users.acl": REDIS_ACL_FILE}),  # the official image's redis user: --aclfile
    "grafana": (472, {"GRAFANA_ADMIN_PASSWORD": "GRAFANA_ADMIN_PASSWORD"}),  # the official image's user
    # The Kamailio edge (profile edge): its own database login, the owner's to create it, and the SIP
    # passwords it authenticates phones with. Root only: Kamailio itself runs as the kamailio user
    # (stack.container_edge).
    "edge": (
        0,
        {
            "AIPBX_EDGE_DB_PASSWORD": "AIPBX_EDGE_DB_PASSWORD",
            "POSTGRES_PASSWORD": "POSTGRES_PASSWORD",
            SIP_PASSWORDS_FILE: SIP_PASSWORDS_FILE,
        },
    ),
}

#: The variables compose.yaml reads from ``.env`` and their production defaults (the same defaults
#: as compose.yaml's ``${NAME:-default}``; tests/unit/test_compose_file.py keeps the two in step).
SETTINGS: dict[str, str] = {
    "AIPBX_INSTANCE": "pbx",
    "AIPBX_SIP_BIND": "0.0.0.0",
    "AIPBX_SIP_PORT": "5060",
    "AIPBX_SIP_TLS_PORT": "5061",
    # SIP over TLS (PEM files in secrets/tls/, mounted at /run/tls: e.g. /run/tls/fullchain.pem); empty: no TLS
    "AIPBX_SIP_TLS_CERT": "",
    "AIPBX_SIP_TLS_KEY": "",
    # Behind NAT: the public address, and the networks not behind it (comma-separated)
    "AIPBX_SIP_EXTERNAL_ADDRESS": "",
    "AIPBX_SIP_LOCAL_NET": "",
    "AIPBX_SIP_RTP_TIMEOUT": "120",
    "AIPBX_RTP_START": "10000",
    "AIPBX_RTP_END": "20000",
    "AIPBX_HTTP_PORT": "8088",
    # The Kamailio edge (profile edge; docs/deploy.md): which node this host's Asterisk is (empty: no
    # edge, phones register at Asterisk), every node's SIP address (comma-separated; empty: node 1 alone,
    # on 127.0.0.2), and the edge's address the nodes reach and its registration lookup's (empty: loopback)
    "AIPBX_NODE": "",
    "AIPBX_NODE_ADDRESSES": "",
    "AIPBX_EDGE_NODE_ADDRESS": "",
    "AIPBX_EDGE_LOOKUP_ADDRESS": "",
    "AIPBX_WEB_BIND": "127.0.0.1",
    "AIPBX_WEB_PORT": "8000",
    "AIPBX_STATUS_PORT": "8090",
    "AIPBX_CHROMA_PORT": "8001",
    "AIPBX_WORKER_METRICS_PORT": "9101",
    "AIPBX_WORKER_LONG_METRICS_PORT": "9102",
    "AIPBX_POSTGRES_PORT": "5432",
    "AIPBX_REDIS_PORT": "6379",
    "AIPBX_PROMETHEUS_PORT": "9090",
    "AIPBX_GRAFANA_PORT": "3000",
    "DJANGO_ALLOWED_HOSTS": "localhost",
}


class ContainerError(RuntimeError):
    """A container cannot start as configured; the message says what to set or run."""


def require_secrets(env: Mapping[str, str], wanted: Sequence[str]) -> None:
    """Raise :class:`ContainerError` naming every one of ``wanted`` the environment has no value for."""
    missing = [name for name in wanted if not env.get(name, "").strip()]
    if missing:
        raise ContainerError(
            f"no value for {', '.join(missing)}: run the set-up once more "
            "(docker compose up runs it first; or make docker-env), then restart"
        )


# --- secrets -------------------------------------------------------------------------------------
def read_secrets(directory: Path = SECRETS_DIR) -> dict[str, str]:
    """The variables the secret files in ``directory`` set (none if there is no such directory)."""
    values: dict[str, str] = {}
    if not directory.is_dir():
        return values
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if path.name.endswith(".env"):
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    values[key.strip()] = value.strip()
        else:
            values[path.name] = text.rstrip("\r\n")
    return values


def environment(base: Mapping[str, str] | None = None, directory: Path = SECRETS_DIR) -> dict[str, str]:
    """``base`` (the process environment) with the container's secrets added.

    With ``AIPBX_REDIS_PASSWORD`` among them, ``AIPBX_REDIS_URL`` (compose.yaml's, without credentials)
    logs in as the instance's Redis user (``aipbx-<instance>``, made by the ACL file setup writes).
    """
    env = {**(os.environ if base is None else base), **read_secrets(directory)}
    password, url = env.get("AIPBX_REDIS_PASSWORD", ""), env.get("AIPBX_REDIS_URL", "")
    if password and url:
        from stack.redis_acl import credentials, user_name, with_credentials

        if not credentials(url)[0]:
            instance = env.get("AIPBX_INSTANCE", "").strip() or SETTINGS["AIPBX_INSTANCE"]
            env["AIPBX_REDIS_URL"] = with_credentials(url, user_name(instance), password)
    return env


def _write_private(path: Path, text: str, mode: int = 0o600, uid: int | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    if uid is not None:
        os.chown(tmp, uid, uid)
    tmp.replace(path)


def share(secrets_dir: Path, shares_dir: Path) -> list[str]:
    """Copy each group's secrets into its volume (mounted at ``shares_dir/<group>``), mode 0400 for its uid.

    Files that are no longer the group's are removed. A group whose volume is not mounted is skipped.
    """
    root = os.geteuid() == 0
    done = []
    for group, (uid, files) in SHARES.items():
        target = shares_dir / group
        if not target.is_dir():
            continue
        target.chmod(0o700)  # 0500 again below
        for stale in target.iterdir():
            if stale.name not in files:
                stale.unlink()
        for name, source in files.items():
            _write_private(
                target / name, (secrets_dir / source).read_text(encoding="utf-8"), 0o400, uid if root else None
            )
        target.chmod(0o500)
        if root:
            os.chown(target, uid, uid)
        done.append(group)
    return done


def setup(root: Path, shares_dir: Path | None = None) -> list[str]:
    """Create what ``compose.yaml`` needs in ``root``: missing secrets and settings; then share the secrets.

    Returns what was added.
    """
    from aipbx.directory import load_directory
    from stack.config import read_env_file, secret_generators

    directory = load_directory(root / "asterisk" / "extensions.yaml")
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    secrets_dir.chmod(0o700)
    generators = secret_generators(directory)
    # Letters and digits, 24 of them, like the other passwords.
    generators["POSTGRES_PASSWORD"] = generators["GRAFANA_ADMIN_PASSWORD"] = generators["AIPBX_ARI_PASSWORD"]
    added = []
    for name, make in generators.items():
        if name.startswith("AIPBX_SIP_PASSWORD_"):
            continue  # one file below
        path = secrets_dir / name
        if not path.exists() or not path.read_text(encoding="utf-8").strip():
            _write_private(path, make() + "\n")
            added.append(f"secrets/{name}")
    sip_path = secrets_dir / SIP_PASSWORDS_FILE
    sip = read_env_file(sip_path)
    missing = {
        name: make()
        for name, make in generators.items()
        if name.startswith("AIPBX_SIP_PASSWORD_") and not sip.get(name)
    }
    if missing or not sip_path.exists():
        lines = (
            sip_path.read_text(encoding="utf-8").rstrip("\n").splitlines()
            if sip_path.exists()
            else ["# One SIP password per extension of asterisk/extensions.yaml (random per install)."]
        )
        lines += [f"{name}={value}" for name, value in missing.items()]
        _write_private(sip_path, "\n".join(lines) + "\n")
        added += [f"secrets/{SIP_PASSWORDS_FILE}: {name}" for name in missing]

    env_path = root / ".env"
    present = read_env_file(env_path)
    # Every time: the instance's name (and so its Redis user and keys) may have changed in .env.
    from stack.redis_acl import acl_file, user_name

    instance = present.get("AIPBX_INSTANCE", "").strip() or SETTINGS["AIPBX_INSTANCE"]
    redis_password = (secrets_dir / "AIPBX_REDIS_PASSWORD").read_text(encoding="utf-8").strip()
    _write_private(secrets_dir / REDIS_ACL_FILE, acl_file({user_name(instance): (redis_password, instance)}))
    new_settings = {name: value for name, value in SETTINGS.items() if name not in present}
    if new_settings:
        lines = env_path.read_text(encoding="utf-8").rstrip("\n").splitlines() if env_path.exists() else []
        lines += ["# compose.yaml's settings (production defaults; secrets live in secrets/, not here)."]
        lines += [f"{name}={value}" for name, value in new_settings.items()]
        env_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        added += [f".env: {name}" for name in new_settings]
    if env_path.exists():
        env_path.chmod(0o600)  # read by the compose CLI only; cloud API keys may be added here
    _give_to_owner_of(root, [secrets_dir, *secrets_dir.iterdir(), env_path])
    if shares_dir is not None:
        share(secrets_dir, shares_dir)
    return added


def _give_to_owner_of(root: Path, paths: list[Path]) -> None:
    """Run as root in a container (``docker compose run --rm setup``), hand the files to the checkout's owner."""
    if os.geteuid() != 0:
        return
    owner = root.stat()
    for path in paths:
        if path.exists():
            os.chown(path, owner.st_uid, owner.st_gid)


# --- asterisk ------------------------------------------------------------------------------------
def asterisk_config(env: Mapping[str, str]):
    """The :class:`~stack.config.StackConfig` of the Asterisk container, from its environment."""
    from aipbx.directory import load_directory
    from stack.config import SettingsError, StackConfig, cluster_settings, sip_settings
    from stack.container_edge import node_index

    directory = load_directory(Path(env.get("AIPBX_EXTENSIONS_FILE", "asterisk/extensions.yaml")))
    wanted = ["AIPBX_ARI_PASSWORD", *(f"AIPBX_SIP_PASSWORD_{ext.ext}" for ext in directory)]
    require_secrets(env, wanted)

    def integer(name: str) -> int:
        raw = env.get(name, "").strip() or SETTINGS[name]
        try:
            return int(raw)
        except ValueError:
            raise ContainerError(f"{name} must be a number, not {raw!r}") from None

    try:
        sip = sip_settings(env)
        cluster = cluster_settings(env)
        node = node_index(env)
    except (SettingsError, ValueError) as exc:
        raise ContainerError(str(exc)) from None
    cfg = StackConfig(
        name=env.get("AIPBX_INSTANCE", "").strip() or SETTINGS["AIPBX_INSTANCE"],
        var_dir=Path("/var/lib/asterisk"),
        recordings_dir=Path("/var/spool/aipbx/recordings"),
        cdr_dir=Path("/var/lib/asterisk/cdr"),  # unused: the ARI app writes the CDR
        directory=directory,
        secrets={name: env[name].strip() for name in wanted},
        system_asterisk=True,  # the image's own Asterisk: modules and codecs are looked up in /
        sip_bind=env.get("AIPBX_SIP_BIND", "").strip() or SETTINGS["AIPBX_SIP_BIND"],
        sip_port=integer("AIPBX_SIP_PORT"),
        http_port=integer("AIPBX_HTTP_PORT"),
        rtp_start=integer("AIPBX_RTP_START"),
        rtp_end=integer("AIPBX_RTP_END"),
        ari_user=env.get("AIPBX_ARI_USER", "").strip() or "aipbx",
        ari_app=env.get("AIPBX_ARI_APP", "").strip() or "aipbx",
        **sip,
        **cluster,
    )
    if not node:
        return cfg
    # Behind the edge (profile edge): its only endpoint is the edge, extensions ring through it.
    from stack.cluster import compose_node

    try:
        return compose_node(cfg, node)
    except SettingsError as exc:
        raise ContainerError(str(exc)) from None


def render_asterisk(env: Mapping[str, str], etc_dir: Path = ASTERISK_ETC) -> list[Path]:
    """Render the container's Asterisk configuration into ``etc_dir``."""
    from stack.asterisk import DOCKER_LAYOUT, render

    layout = {key: value for key, value in DOCKER_LAYOUT.items() if key != "MODULE_DIR"}  # found in /
    layout["ETC_DIR"] = str(etc_dir)
    return render(asterisk_config(env), etc_dir, layout)


def run_asterisk() -> None:
    env = environment()
    render_asterisk(env)
    print(f"rendered {ASTERISK_ETC} for instance {env.get('AIPBX_INSTANCE') or SETTINGS['AIPBX_INSTANCE']}", flush=True)
    # Already the asterisk user (the image's USER): runuser/rungroup in asterisk.conf match, no -U.
    os.execvp("asterisk", ["asterisk", "-f", "-n", "-C", str(ASTERISK_ETC / "asterisk.conf")])


# --- probes --------------------------------------------------------------------------------------
def _http_ok(url: str, headers: Mapping[str, str] | None = None) -> bool:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return False


def probe(checks: list[str], env: Mapping[str, str]) -> bool:
    """Run health checks in order; True if every one passes (what failed goes to stderr)."""
    ok = True
    rest = list(checks)
    while rest:
        check = rest.pop(0)
        if check == "ari":
            from base64 import b64encode

            port = env.get("AIPBX_HTTP_PORT", "").strip() or SETTINGS["AIPBX_HTTP_PORT"]
            user = env.get("AIPBX_ARI_USER", "").strip() or "aipbx"
            token = b64encode(f"{user}:{env.get('AIPBX_ARI_PASSWORD', '')}".encode()).decode()
            ok &= _http_ok(f"http://127.0.0.1:{port}/ari/asterisk/ping", {"Authorization": f"Basic {token}"})
        elif check == "http":
            ok &= _http_ok(rest.pop(0))
        elif check == "postgres":
            import psycopg

            try:
                # libpq takes the password from PGPASSWORD (a secret), the rest from the URL.
                with psycopg.connect(env["AIPBX_DATABASE_URL"], connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
            except (psycopg.Error, KeyError) as exc:
                print(f"postgres: {exc}", file=sys.stderr)
                ok = False
        elif check == "redis":
            import redis

            try:
                redis.Redis.from_url(env["AIPBX_REDIS_URL"], socket_timeout=5).ping()
            except (redis.RedisError, KeyError) as exc:
                print(f"redis: {exc}", file=sys.stderr)
                ok = False
        elif check == "edge":
            from stack.container_edge import probe_edge

            ok &= probe_edge(env)
        else:
            raise ContainerError(f"unknown check {check!r} (ari, http URL, postgres, redis, edge)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.container")
    sub = parser.add_subparsers(dest="command", required=True)
    setup_cmd = sub.add_parser("setup", help="secrets/ and .env for compose.yaml")
    setup_cmd.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    setup_cmd.add_argument("--shares", type=Path, help="where the groups' secret volumes are mounted")
    sub.add_parser("asterisk", help="render the configuration, then run Asterisk")
    sub.add_parser("edge", help="prepare the Kamailio edge's database and configuration, then run Kamailio")
    exec_cmd = sub.add_parser("exec", help="run a command with the container's secrets in its environment")
    exec_cmd.add_argument("argv", nargs=argparse.REMAINDER)
    probe_cmd = sub.add_parser("probe", help="health checks: ari | http URL | postgres | redis | edge")
    probe_cmd.add_argument("checks", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            added = setup(args.root.resolve(), args.shares)
            print("\n".join(f"added {item}" for item in added) or "nothing to add: secrets/ and .env are complete")
        elif args.command == "asterisk":
            run_asterisk()
        elif args.command == "edge":
            from stack.container_edge import run_edge

            run_edge(environment())
        elif args.command == "exec":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                parser.error("exec needs a command")
            os.execvpe(command[0], command, environment())
        elif args.command == "probe":
            os.environ.update(read_secrets())  # libpq reads PGPASSWORD from the process environment
            return 0 if probe(args.checks, environment()) else 1
    except ContainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
