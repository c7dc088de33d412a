"""``python -m stack up|down|phones|demo|status|render|fail2ban`` — what the make targets call.

up      PostgreSQL/Redis checked (installed on Debian if missing), database migrated, Asterisk
        started in its chroot, then the ARI app, the web console and a Celery worker.
        ``--nodes N`` (``make up NODES=2``): a Kamailio edge where phones register, and N Asterisk +
        ARI-app nodes on 127.0.0.2 ... behind it (docs/scaling.md); the console and workers once.
down    stops everything ``up`` started (the edge and nodes too) and unmounts the chroot.
phones  prints the SIP server address and every extension's credentials as JSON.
demo    ``up``, then a scripted phone calls an extension that does not answer and talks to the AI.
fail2ban  installs the SIP jail and filter into the host's fail2ban, reading this instance's
        security log (``--docker``: the container's; ``--logpath``: any), or the edge's log while
        ``up --nodes`` runs (there the phones authenticate at the edge).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

import redis

from aipbx.directory import DirectoryError
from stack import procs, redis_acl
from stack.asterisk import Asterisk, AsteriskError
from stack.config import REPO, SettingsError, StackConfig, dev_config
from stack.fail2ban import Fail2banError
from stack.kamailio import KamailioError
from stack.prereqs import PrereqError, ensure_database, ensure_postgres, ensure_redis


def _env(cfg: StackConfig) -> dict[str, str]:
    env = {**os.environ, **cfg.process_env()}
    env.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.dev")
    env["PYTHONPATH"] = str(REPO)
    return env


def _wait(predicate, seconds: float, what: str, cfg: StackConfig, service: str | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if service and procs.pid_of(cfg, service) is None:
            raise PrereqError(f"{what}: the {service} process exited.\n{procs.log_tail(cfg, service)}")
        time.sleep(0.3)
    tail = procs.log_tail(cfg, service) if service else ""
    raise PrereqError(f"{what} did not become ready in {seconds:.0f} s.\n{tail}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except OSError:
        return False


def _app_connected(asterisk: Asterisk, app: str):
    def connected() -> bool:
        try:
            asterisk.ari_get(f"/ari/applications/{app}", timeout=1.0)
            return True
        except OSError:
            return False

    return connected


def up(cfg: StackConfig, nodes: int = 0) -> None:
    if nodes:
        from stack import cluster

        cluster.check_placement(cfg, nodes)
        running = cluster.running_nodes(cfg)
        if Asterisk(cfg).running() or (running and running != nodes):
            raise PrereqError(f"instance {cfg.name} already runs with another topology: `make down` first")
    ensure_postgres()
    ensure_redis()
    ensure_database("aipbx")
    if cfg.redis_url:
        try:
            redis_acl.set_user(cfg.redis_admin_url, cfg.redis_user, cfg.secrets["AIPBX_REDIS_PASSWORD"], cfg.name)
        except (redis.RedisError, OSError) as exc:  # a Redis without ACL (< 6), an admin login that may not
            raise PrereqError(
                f"cannot create the Redis user {cfg.redis_user}: {exc}. Set AIPBX_REDIS_ADMIN_URL "
                "to a Redis login allowed ACL SETUSER (docs/operations.md)."
            ) from exc
    env = _env(cfg)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    admin_env = {**env, "AIPBX_CONSOLE_ADMIN_PASSWORD": cfg.secrets.get("AIPBX_CONSOLE_ADMIN_PASSWORD", "")}
    subprocess.run([sys.executable, "manage.py", "create_console_admin"], cwd=REPO, env=admin_env, check=True)
    # The extension directory (PostgreSQL, seeded from extensions.yaml) for the ARI app to follow.
    subprocess.run([sys.executable, "manage.py", "publish_directory"], cwd=REPO, env=env, check=True)
    if nodes:
        from stack import cluster

        apps = cluster.up(cfg, nodes, env)
    else:
        asterisk = Asterisk(cfg)
        if not asterisk.running():
            print(f"starting Asterisk (instance {cfg.name}, SIP {cfg.sip_bind}:{cfg.sip_port}) ...", flush=True)
            asterisk.start()
        apps = [(cfg, asterisk)]
    for service in procs.services(cfg):
        if nodes and service.name == "ariapp":
            continue  # one per node (cluster.up)
        procs.start(cfg, service, env)
    _wait(
        lambda: _http_ok(f"http://127.0.0.1:{cfg.chroma_port}/api/v2/heartbeat"),
        60,
        "the knowledge store",
        cfg,
        "chroma",
    )
    for app_cfg, asterisk in apps:
        _wait(_app_connected(asterisk, app_cfg.ari_app), 90, f"the ARI app {app_cfg.ari_app}", app_cfg, "ariapp")
    _wait(lambda: _http_ok(f"http://127.0.0.1:{cfg.web_port}/health"), 60, "the web console", cfg, "web")
    print(ready_message(cfg), flush=True)
    if nodes:
        names = ", ".join(f"{node.name} ({node.sip_bind}, ARI app {node.ari_app})" for node, _ in apps)
        print(f"phones register to the Kamailio edge on port {cfg.sip_port}; nodes: {names}", flush=True)


def ready_message(cfg: StackConfig) -> str:
    """What `make up` prints at the end: where things are, and where the admin password is (never the password:
    terminals are scrolled back, shared and recorded)."""
    return (
        f"stack up: Asterisk, ARI app, web console http://127.0.0.1:{cfg.web_port}/ and Celery workers running."
        f"\nconsole login: admin; the password is AIPBX_CONSOLE_ADMIN_PASSWORD in {REPO / '.env'}"
        f" (grep AIPBX_CONSOLE_ADMIN_PASSWORD .env)"
        f"\nlogs: {cfg.log_dir}"
    )


def down(cfg: StackConfig) -> None:
    for service in reversed(procs.services(cfg)):
        if procs.stop(cfg, service.name):
            print(f"stopped {service.name}")
    from stack import cluster

    for line in cluster.down(cfg):
        print(line)
    asterisk = Asterisk(cfg)
    was_running = asterisk.running()
    asterisk.stop()
    if was_running:
        print("stopped Asterisk")
    if cfg.redis_url:
        try:
            redis_acl.remove_user(cfg.redis_admin_url, cfg.redis_user)
        except (redis.RedisError, OSError) as exc:  # Redis gone: no process of the instance left to use it
            print(f"could not remove the Redis user {cfg.redis_user}: {exc}", file=sys.stderr)


def print_phones(cfg: StackConfig) -> None:
    print(json.dumps(cfg.phones(), indent=2, ensure_ascii=False))


def status(cfg: StackConfig) -> int:
    from stack import cluster
    from stack.kamailio import Kamailio

    count = cluster.running_nodes(cfg)
    if count:
        nodes = cluster.nodes_of(cfg, count)
        rows = [("edge", Kamailio(cluster.edge_config(cfg, nodes)).running())]
        for node in nodes:
            rows += [(node.name, Asterisk(node).running())]
            rows += [(f"{node.name} app", procs.pid_of(node, "ariapp") is not None)]
        rows += [(s.name, procs.pid_of(cfg, s.name) is not None) for s in procs.services(cfg) if s.name != "ariapp"]
    else:
        rows = [("asterisk", Asterisk(cfg).running())]
        rows += [(s.name, procs.pid_of(cfg, s.name) is not None) for s in procs.services(cfg)]
    for name, running in rows:
        print(f"{name:10s} {'running' if running else 'stopped'}")
    return 0 if all(running for _, running in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack")
    parser.add_argument("command", choices=["up", "down", "phones", "demo", "status", "render", "fail2ban"])
    parser.add_argument(
        "--docker",
        action="store_true",
        help="render: the Asterisk container's layout, into var/docker/asterisk/etc (to inspect); "
        "fail2ban: read the container's security log",
    )
    parser.add_argument("--logpath", help="fail2ban: the Asterisk security log to read")
    parser.add_argument(
        "--nodes",
        type=int,
        default=0,
        help="up/demo: N Asterisk + ARI-app nodes behind a Kamailio edge (docs/scaling.md); 0: one Asterisk",
    )
    args = parser.parse_args(argv)
    try:
        cfg = dev_config()
        if args.command == "up":
            up(cfg, args.nodes)
        elif args.command == "down":
            down(cfg)
        elif args.command == "phones":
            print_phones(cfg)
        elif args.command == "status":
            return status(cfg)
        elif args.command == "render":
            from stack.asterisk import DOCKER_LAYOUT, render

            if args.docker:
                written = render(cfg, REPO / "var" / "docker" / "asterisk" / "etc", DOCKER_LAYOUT)
            else:
                written = render(cfg, cfg.var_dir / "asterisk-etc")
            for path in written:
                print(path)
        elif args.command == "fail2ban":
            from pathlib import Path

            from stack import cluster, fail2ban

            # With nodes behind the edge (make up NODES=2) the phones authenticate at the edge only.
            nodes = cluster.running_nodes(cfg) if not (args.logpath or args.docker) else 0
            source = fail2ban.EDGE if nodes else fail2ban.ASTERISK
            logpath = (
                Path(args.logpath)
                if args.logpath
                else fail2ban.docker_logpath()
                if args.docker
                else cluster.edge_config(cfg, cluster.nodes_of(cfg, nodes)).log_path
                if nodes
                else fail2ban.security_log(cfg)
            )
            for line in fail2ban.install(logpath, source=source):
                print(line)
        elif args.command == "demo":
            from stack.demo import run_demo

            up(cfg)
            return run_demo(cfg)
    except (PrereqError, AsteriskError, KamailioError, DirectoryError, SettingsError, Fail2banError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
