"""``python -m stack up|down|phones|demo|status|render`` — what the make targets call.

up      PostgreSQL/Redis checked (installed on Debian if missing), database migrated, Asterisk
        started in its chroot, then the ARI app, the web console and a Celery worker.
down    stops everything ``up`` started and unmounts the chroot.
phones  prints the SIP server address and every extension's credentials as JSON.
demo    ``up``, then a scripted phone calls an extension that does not answer and talks to the AI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

from ariapp.directory import DirectoryError
from stack import procs
from stack.asterisk import Asterisk, AsteriskError
from stack.config import REPO, StackConfig, dev_config
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


def up(cfg: StackConfig) -> None:
    ensure_postgres()
    ensure_redis()
    ensure_database("aipbx")
    env = _env(cfg)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    admin_env = {**env, "AIPBX_CONSOLE_ADMIN_PASSWORD": cfg.secrets.get("AIPBX_CONSOLE_ADMIN_PASSWORD", "")}
    subprocess.run([sys.executable, "manage.py", "create_console_admin"], cwd=REPO, env=admin_env, check=True)
    asterisk = Asterisk(cfg)
    if not asterisk.running():
        print(f"starting Asterisk (instance {cfg.name}, SIP {cfg.sip_bind}:{cfg.sip_port}) ...", flush=True)
        asterisk.start()
    for service in procs.services(cfg):
        procs.start(cfg, service, env)

    def app_connected() -> bool:
        try:
            asterisk.ari_get(f"/ari/applications/{cfg.ari_app}", timeout=1.0)
            return True
        except OSError:
            return False

    _wait(
        lambda: _http_ok(f"http://127.0.0.1:{cfg.chroma_port}/api/v2/heartbeat"),
        60,
        "the knowledge store",
        cfg,
        "chroma",
    )
    _wait(app_connected, 90, "the ARI app", cfg, "ariapp")
    _wait(lambda: _http_ok(f"http://127.0.0.1:{cfg.web_port}/health"), 60, "the web console", cfg, "web")
    print(ready_message(cfg), flush=True)


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
    asterisk = Asterisk(cfg)
    was_running = asterisk.running()
    asterisk.stop()
    if was_running:
        print("stopped Asterisk")


def print_phones(cfg: StackConfig) -> None:
    print(json.dumps(cfg.phones(), indent=2, ensure_ascii=False))


def status(cfg: StackConfig) -> int:
    rows = [("asterisk", Asterisk(cfg).running())]
    rows += [(s.name, procs.pid_of(cfg, s.name) is not None) for s in procs.services(cfg)]
    for name, running in rows:
        print(f"{name:10s} {'running' if running else 'stopped'}")
    return 0 if all(running for _, running in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack")
    parser.add_argument("command", choices=["up", "down", "phones", "demo", "status", "render"])
    parser.add_argument(
        "--docker",
        action="store_true",
        help="render: the Asterisk container's layout, into var/docker/asterisk/etc (to inspect)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = dev_config()
        if args.command == "up":
            up(cfg)
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
        elif args.command == "demo":
            from stack.demo import run_demo

            up(cfg)
            return run_demo(cfg)
    except (PrereqError, AsteriskError, DirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
