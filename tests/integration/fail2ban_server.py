"""Debian's fail2ban as the integration tests run it: a foreground server with its own configuration
directory and socket, the shipped filter and jail (stack/fail2ban.py), and an action that writes banned
addresses to a file instead of touching the firewall of this shared machine.

A missing fail2ban fails, as it must in CI (scripts/setup.sh installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from stack import fail2ban


class Fail2ban:
    """A foreground ``fail2ban-server`` with a shipped filter and its jail; bans go to a file."""

    def __init__(self, workdir: Path, logpath: Path, source: fail2ban.Source = fail2ban.ASTERISK) -> None:
        missing = [tool for tool in ("fail2ban-server", "fail2ban-client") if shutil.which(tool) is None]
        assert not missing, f"{', '.join(missing)} not found: apt-get install fail2ban (scripts/setup.sh)"
        self.conf = workdir / "conf"
        self.socket = workdir / "f2b.sock"
        self.bans = workdir / "bans.txt"
        self.log = workdir / "fail2ban.log"
        (self.conf / "filter.d").mkdir(parents=True)
        (self.conf / "action.d").mkdir()
        self.source = source
        shutil.copyfile(source.filter_file, self.conf / "filter.d" / f"{source.filter_name}.conf")
        (self.conf / "fail2ban.conf").write_text(
            f"[Definition]\nloglevel = INFO\nlogtarget = {self.log}\nsocket = {self.socket}\n"
            f"pidfile = {workdir / 'f2b.pid'}\ndbfile = :memory:\n"
        )
        # Instead of iptables: the banned address, one per line.
        (self.conf / "action.d" / "record-ban.conf").write_text(
            f"[Definition]\nactionstart =\nactionstop =\nactioncheck =\nactionban = echo <ip> >> {self.bans}\n"
            "actionunban =\n"
        )
        # The production jail, but with the test's action, and local addresses not exempt (the phones are).
        (self.conf / "jail.conf").write_text(
            fail2ban.jail_config(
                logpath,
                source=source,
                action="record-ban",
                policy=fail2ban.JailPolicy(maxretry=3),
                extra={"ignoreself": "false", "ignoreip": ""},
            )
        )
        self.proc: subprocess.Popen | None = None

    def client(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["fail2ban-client", "-c", str(self.conf), "-s", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    "fail2ban-server",
                    "-f",
                    "-x",
                    "-c",
                    str(self.conf),
                    "-s",
                    str(self.socket),
                    "-p",
                    str(self.socket.with_suffix(".pid")),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"fail2ban-server exited:\n{self.log.read_text()[-2000:]}"
            if self.source.jail in self.client("status").stdout:
                return
            time.sleep(0.3)
        raise AssertionError(f"the jail did not start in 30 s:\n{self.log.read_text()[-2000:]}")

    def wait_banned(self, address: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while address not in self.banned():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        return True

    def banned(self) -> set[str]:
        return set(self.bans.read_text().split()) if self.bans.exists() else set()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.client("stop")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
