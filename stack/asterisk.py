"""Render the Asterisk configuration and run Asterisk 22 inside the cached Debian sid chroot.

Traps handled here (see ASTERISK-NOTES.md): ``/etc/hosts`` must exist in the chroot or SIP threads
do slow DNS lookups; Asterisk must run ``-U asterisk`` (``-U root`` breaks astdb); ``/proc`` and
``/dev`` are bind-mounted and must be unmounted again or the next run breaks; the major version is
asserted because sid moves.

With ``system_asterisk`` (a user's own server: ``asterisk`` on the PATH, or ``AIPBX_ASTERISK=system``)
the same rendered configuration runs on the host's Asterisk instead: no chroot, no mounts, the
instance directories under ``var/<instance>/asterisk``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

from aipbx.directory import Extension, dialplan_global
from stack.config import REPO, StackConfig

TEMPLATES = REPO / "asterisk" / "templates"
INSTALL_SCRIPT = REPO / "asterisk" / "scripts" / "install-chroot.sh"
WANT_MAJOR = "22"
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


class AsteriskError(RuntimeError):
    """Asterisk could not be installed, configured, started or stopped; the message says why."""


def _fill(template: str, values: dict[str, str], name: str) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise AsteriskError(f"template {name}: no value for @@{key}@@")
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib/asterisk/modules",
    "/usr/lib64/asterisk/modules",
)


def _module_dir(cfg: StackConfig) -> str:
    base = Path("/") if cfg.system_asterisk else cfg.chroot
    for candidate in MODULE_DIRS:
        if (base / candidate.lstrip("/") / "chan_pjsip.so").exists():
            return candidate
    return MODULE_DIRS[0]


def _codecs(cfg: StackConfig) -> str:
    base = Path("/") if cfg.system_asterisk else cfg.chroot
    opus = base / _module_dir(cfg).lstrip("/") / "codec_opus_open_source.so"
    return "ulaw,alaw,opus" if opus.exists() else "ulaw,alaw"


def _endpoint_security(ext: Extension) -> str:
    """The per-extension ACL and media encryption options of its endpoint."""
    lines = []
    if ext.permit:
        # Asterisk applies the rules in order and the last match wins: refuse every address, then
        # allow the listed networks. A refused request is answered 403 and logged (FailedACL).
        lines += ["deny = 0.0.0.0/0.0.0.0", "deny = ::/0", *(f"permit = {network}" for network in ext.permit)]
    if ext.srtp:
        # SDES: the keys are in the SDP, so only TLS signalling keeps them secret; no plain-RTP fallback.
        lines += ["media_encryption = sdes", "media_encryption_optimistic = no"]
    return "".join(f"{line}\n" for line in lines)


def _edge_endpoint(cfg: StackConfig) -> str:
    """Behind a Kamailio edge the node has no phone endpoints: one endpoint, the edge, identified by its
    address (the edge authenticated the phone; the caller id is the From it checked), and the AOR the
    dialplan rings extensions through (``PJSIP/1002@edge``)."""
    assert cfg.edge is not None
    host, port = cfg.edge
    media = f"media_address = {cfg.media_address}\n" if cfg.media_address else ""
    return (
        "; The Kamailio edge (docs/scaling.md): phones register there and every request from it is trusted\n"
        "; by address. Its Record-Route carries in-dialog requests: the Contact must stay the phone's.\n"
        "[edge](phone-endpoint)\n"
        "aors = edge\n"
        "rewrite_contact = no\n"
        "; A phone behind a NAT offers its private address in SDP (the edge leaves SDP alone): send its media\n"
        "; where its RTP really comes from (it sends first, or at least as soon as it answers).\n"
        "rtp_symmetric = yes\n"
        f"{media}"
        "\n[edge]\n"
        "type = identify\n"
        "endpoint = edge\n"
        f"match = {host}\n"
        "\n[edge]\n"
        "type = aor\n"
        f"contact = sip:{host}:{port}\n"
        "qualify_frequency = 0\n"
    )


def _endpoints(cfg: StackConfig) -> str:
    if cfg.edge is not None:
        return _edge_endpoint(cfg)
    blocks = []
    for ext in cfg.directory:
        if ext.srtp and not cfg.tls:
            raise AsteriskError(
                f"extension {ext.ext} has srtp: true, which needs the TLS transport "
                "(AIPBX_SIP_TLS_CERT and AIPBX_SIP_TLS_KEY): its keys would cross the network in clear"
            )
        # Caller ID names come from the YAML file; quotes would break the header, so drop them.
        owner = ext.owner.replace('"', "")
        blocks.append(
            f"[{ext.ext}](phone-endpoint)\n"
            f"auth = {ext.ext}-auth\n"
            f"aors = {ext.ext}\n"
            f'callerid = "{owner}" <{ext.ext}>\n'
            f"{_endpoint_security(ext)}"
            f"\n[{ext.ext}-auth](phone-auth)\n"
            f"username = {ext.ext}\n"
            f"password = {cfg.sip_password(ext.ext)}\n"
            f"\n[{ext.ext}](phone-aor)\n"
        )
    return "\n".join(blocks)


#: Where the TLS certificate and key are copied, beside the rendered configuration (the chroot and the
#: container cannot see the files where the settings point).
TLS_CERT_FILE = "sip-tls.crt"
TLS_KEY_FILE = "sip-tls.key"


def _nat_options(cfg: StackConfig) -> str:
    """Transport options for a PBX behind NAT (docs/operations.md "SIP from outside the office")."""
    if not cfg.external_address:
        return ""
    lines = [
        f"external_media_address = {cfg.external_address}",
        f"external_signaling_address = {cfg.external_address}",
        *(f"local_net = {network}" for network in cfg.local_net),
    ]
    return "\n".join(lines)


def _tls_transport(cfg: StackConfig, etc_dir: str) -> str:
    if not cfg.tls:
        return ""
    lines = [
        "",
        "; SIP over TLS for phones outside the office (a certificate is configured).",
        "[transport-tls]",
        "type = transport",
        "protocol = tls",
        f"bind = {cfg.sip_bind}:{cfg.tls_port}",
        f"cert_file = {etc_dir}/{TLS_CERT_FILE}",
        f"priv_key_file = {etc_dir}/{TLS_KEY_FILE}",
        # PJSIP's default method is TLS 1.0 only; sslv23 negotiates the highest version both
        # sides have, above OpenSSL's floor (TLS 1.2 on Debian).
        "method = sslv23",
        # Phones are not asked for certificates: they authenticate with their passwords.
        "verify_client = no",
        "require_client_cert = no",
        "verify_server = no",
    ]
    nat = _nat_options(cfg)
    return "\n".join(lines) + ("\n" + nat if nat else "")


def _copy_tls_files(cfg: StackConfig, etc_dir: Path) -> list[Path]:
    if cfg.tls_cert is None or cfg.tls_key is None:
        return []
    copies = []
    for source, name in ((cfg.tls_cert, TLS_CERT_FILE), (cfg.tls_key, TLS_KEY_FILE)):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise AsteriskError(f"cannot read the SIP TLS file {source}: {exc.strerror}") from exc
        target = etc_dir / name
        target.write_bytes(data)
        target.chmod(0o640)
        copies.append(target)
    return copies


def _dialplan_globals(cfg: StackConfig) -> str:
    """The seed's per-extension globals (:func:`aipbx.directory.dialplan_global`); the ARI app replaces
    them over ARI with the console's values."""
    return "\n".join(
        "{} = {}".format(*dialplan_global(ext, cfg.directory, cfg.no_answer_override)) for ext in cfg.directory
    )


# Where Asterisk's writable directories are inside the production container (docker/asterisk), and
# its log: JSON lines on the console (the container's stdout), no log file growing inside the container.
DOCKER_LAYOUT = {
    "ETC_DIR": "/etc/asterisk",
    "DB_DIR": "/var/lib/asterisk",
    "SPOOL_DIR": "/var/spool/asterisk",
    "RUN_DIR": "/var/run/asterisk",
    "LOG_DIR": "/var/log/asterisk",
    "REC_DIR": "/var/spool/aipbx/recordings",
    "SOUNDS_DIR": "/var/spool/aipbx/sounds",
    "MODULE_DIR": MODULE_DIRS[0],
    "FILE_LOG": "; no log file: the console (stdout) is the container's log",
    "CONSOLE_LOG_FORMAT": "[json]",
}


def render(cfg: StackConfig, etc_dir: Path, layout: dict[str, str] | None = None) -> list[Path]:
    """Write every config file for this instance into ``etc_dir``; returns the files written.

    ``layout`` overrides directory placeholders (e.g. :data:`DOCKER_LAYOUT` for the container).
    """
    root = cfg.root_in_chroot
    values = {
        "ETC_DIR": f"{root}/etc",
        "DB_DIR": f"{root}/lib",
        "SPOOL_DIR": f"{root}/spool",
        "RUN_DIR": f"{root}/run",
        "LOG_DIR": f"{root}/log",
        "MODULE_DIR": _module_dir(cfg),
        "SYSTEM_NAME": cfg.name,
        "HTTP_BIND": "127.0.0.1",
        "HTTP_PORT": str(cfg.http_port),
        "ARI_USER": cfg.ari_user,
        "ARI_PASSWORD": cfg.ari_password,
        "ARI_APP": cfg.ari_app,
        "RTP_START": str(cfg.rtp_start),
        "RTP_END": str(cfg.rtp_end),
        "SIP_BIND": cfg.sip_bind,
        "SIP_PORT": str(cfg.sip_port),
        "TRANSPORT_EXTRA": _nat_options(cfg),
        "CODECS": _codecs(cfg),
        "QUALIFY": str(cfg.qualify_seconds),
        "RTP_TIMEOUT": str(cfg.rtp_timeout),
        "RTP_TIMEOUT_HOLD": str(cfg.rtp_timeout * 10),
        "ENDPOINTS": _endpoints(cfg),
        # Behind the edge only its address identifies a request; a single node matches phones by name.
        "IDENTIFY_ORDER": "ip" if cfg.edge else "username,ip",
        # Whether the callee cannot ring (then no notice: the AI answers at once): its device state, or
        # behind the edge the edge's usrloc (an unanswered lookup counts as registered: the notice plays).
        "CALLEE_AWAY": (
            f'"${{CURL({cfg.edge_lookup_url}/${{ARG1}})}}" = "no"'
            if cfg.edge_lookup_url
            else '"${DEVICE_STATE(PJSIP/${ARG1})}" = "UNAVAILABLE"'
        ),
        # How the dialplan rings an extension: the phone's own endpoint, or through the edge.
        "CALLEE": "PJSIP/${ARG1}@edge" if cfg.edge else "PJSIP/${ARG1}",
        "DIALPLAN_GLOBALS": _dialplan_globals(cfg),
        "REC_DIR": cfg.recordings_for_asterisk,
        "SOUNDS_DIR": cfg.sounds_for_asterisk,
        "MAX_CALL_SECONDS": str(cfg.max_call_seconds),
        "FILE_LOG": "messages.log => notice,warning,error",
        "CONSOLE_LOG_FORMAT": "",
        **(layout or {}),
    }
    values["TLS_TRANSPORT"] = _tls_transport(cfg, values["ETC_DIR"])
    etc_dir.mkdir(parents=True, exist_ok=True)
    written = _copy_tls_files(cfg, etc_dir)
    for template in sorted(TEMPLATES.glob("*.conf")):
        target = etc_dir / template.name
        target.write_text(_fill(template.read_text(encoding="utf-8"), values, template.name), encoding="utf-8")
        target.chmod(0o640)  # holds passwords
        written.append(target)
    return written


def _is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts", encoding="utf-8") as mounts:
        return any(line.split()[1] == target for line in mounts if len(line.split()) > 1)


def _chroot_uid(cfg: StackConfig) -> tuple[int, int]:
    passwd = Path("/etc/passwd") if cfg.system_asterisk else cfg.chroot / "etc/passwd"
    for line in passwd.read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2]), int(parts[3])
    raise AsteriskError(f"no asterisk user in {passwd}: reinstall Asterisk (or the chroot)")


class Asterisk:
    """One Asterisk process for one stack instance."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.cfg.run_dir / "asterisk.pid"

    def _command(self, *args: str) -> list[str]:
        conf = f"{self.cfg.root_in_chroot}/etc/asterisk.conf"
        if self.cfg.system_asterisk:
            return ["asterisk", "-C", conf, *args]
        return ["chroot", str(self.cfg.chroot), "/usr/sbin/asterisk", "-C", conf, *args]

    def install(self) -> None:
        """Create or verify the cached chroot (debootstrap on first use)."""
        if self.cfg.system_asterisk:
            return
        if os.geteuid() != 0:
            raise AsteriskError("running Asterisk in its chroot needs root (chroot, mount)")
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            env={**os.environ, "AST_CHROOT": str(self.cfg.chroot), "AST_WANT_MAJOR": WANT_MAJOR},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise AsteriskError(f"installing Asterisk failed:\n{result.stdout}{result.stderr}")

    def _prepare(self) -> None:
        cfg, root = self.cfg, self.cfg.root_on_host
        if not cfg.system_asterisk:
            hosts = cfg.chroot / "etc/hosts"
            hosts.write_text(f"127.0.0.1 localhost {socket.gethostname()}\n::1 localhost ip6-localhost\n")
        uid, gid = _chroot_uid(cfg)
        for sub in ("etc", "run", "log", "spool", "lib", "recordings", "sounds"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            if sub != "etc":
                os.chown(root / sub, uid, gid)
        os.chown(root / "etc", 0, gid)
        render(cfg, root / "etc")
        for path in (root / "etc").iterdir():
            os.chown(path, 0, gid)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        cfg.recordings_dir.mkdir(parents=True, exist_ok=True)
        os.chown(cfg.recordings_dir, uid, gid)
        if cfg.system_asterisk:
            return
        for name in ("proc", "dev"):
            target = cfg.chroot / name
            if not _is_mounted(target):
                subprocess.run(["mount", "--bind", f"/{name}", str(target)], check=True)
        rec_target = root / "recordings"
        if _is_mounted(rec_target):
            subprocess.run(["umount", "-l", str(rec_target)], check=False)
        subprocess.run(["mount", "--bind", str(cfg.recordings_dir), str(rec_target)], check=True)

    def start(self, timeout: float = 30.0) -> None:
        if self.running():
            raise AsteriskError(f"Asterisk instance {self.cfg.name} is already running (pid {self._pid()})")
        self.install()
        self._prepare()
        log = open(self.cfg.log_dir / "asterisk.out", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self._command("-f", "-U", "asterisk", "-G", "asterisk"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_netns_entry(self.cfg),
        )
        log.close()
        self.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.cfg.log_dir / "asterisk.out").read_text(errors="replace")[-2000:]
                raise AsteriskError(f"Asterisk exited with {self.proc.returncode}:\n{tail}")
            if self.ping():
                self._check_version()
                return
            time.sleep(0.2)
        self.stop()
        raise AsteriskError(f"Asterisk did not answer on {self.cfg.ari_url}/ari/asterisk/ping in {timeout:.0f} s")

    def ping(self) -> bool:
        try:
            self.ari_get("/ari/asterisk/ping", timeout=1.0)
            return True
        except (OSError, urllib.error.URLError):
            return False

    def ari_get(self, path: str, timeout: float = 5.0) -> object:
        if self.cfg.netns:  # ARI listens on the namespace's own loopback
            from stack.netns import call_in

            return call_in(self.cfg.netns, lambda: self._ari_get(path, timeout))
        return self._ari_get(path, timeout)

    def _ari_get(self, path: str, timeout: float) -> object:
        import json

        request = urllib.request.Request(self.cfg.ari_url + path)
        token = b64encode(f"{self.cfg.ari_user}:{self.cfg.ari_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def _check_version(self) -> None:
        """The chroot must be 22.x (sid moves); a user's own Asterisk must be 20 or newer."""
        info = self.ari_get("/ari/asterisk/info?only=system")
        version = str(info.get("system", {}).get("version", "")) if isinstance(info, dict) else ""
        try:
            major = int(version.split(".", 1)[0])
        except ValueError:
            major = 0
        ok = major >= 20 if self.cfg.system_asterisk else version.startswith(WANT_MAJOR + ".")
        if not ok:
            self.stop()
            want = "20 or newer" if self.cfg.system_asterisk else f"{WANT_MAJOR}.x"
            raise AsteriskError(f"expected Asterisk {want}, found {version!r}")

    def cli(self, command: str, timeout: float = 10.0) -> str:
        result = subprocess.run(self._command("-rx", command), capture_output=True, text=True, timeout=timeout)
        return result.stdout

    def _pid(self) -> int | None:
        # Imported here: the Asterisk image copies this module without stack.procs (and its imports);
        # in a container Asterisk runs in the foreground and nothing reads a pid file.
        from stack.procs import pid_in

        return pid_in(self.pid_file)

    def running(self) -> bool:
        return self._pid() is not None

    def stop(self, timeout: float = 15.0) -> None:
        pid = self._pid()
        if pid is not None:
            try:
                self.cli("core stop now", timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.1)
            if self._alive(pid):
                os.kill(pid, 9)
                time.sleep(0.2)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.pid_file.unlink(missing_ok=True)
        self._unmount()

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL, as a crash would end it: no BYE to any phone, nothing cleaned up inside Asterisk.
        The mounts are undone as :meth:`stop` does, so :meth:`start` can follow."""
        pid = self._pid()
        if pid is not None:
            os.kill(pid, 9)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.05)
        if self.proc is not None:
            self.proc.wait(timeout=5)  # reap it: a zombie still answers kill(0) and would look running
        self.pid_file.unlink(missing_ok=True)
        self._unmount()

    def _alive(self, pid: int) -> bool:
        if self.proc is not None and self.proc.pid == pid:
            return self.proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie child of another process still answers kill(0); check its state.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False

    def _unmount(self) -> None:
        if self.cfg.system_asterisk:
            return
        rec_target = self.cfg.root_on_host / "recordings"
        if _is_mounted(rec_target):
            subprocess.run(["umount", "-l", str(rec_target)], check=False)
        if not _other_instances_running(self.cfg):
            for name in ("proc", "dev"):
                target = self.cfg.chroot / name
                if _is_mounted(target):
                    subprocess.run(["umount", "-l", str(target)], check=False)


def _netns_entry(cfg: StackConfig):
    """The ``preexec_fn`` that starts Asterisk in the instance's network namespace (None: this host's)."""
    if not cfg.netns:
        return None
    from stack.netns import entering

    return entering(cfg.netns)


def _other_instances_running(cfg: StackConfig) -> bool:
    """Whether another Asterisk still runs in this chroot (then /proc and /dev stay mounted)."""
    root = str(cfg.chroot.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == root and (entry / "comm").read_text().strip() == "asterisk":
                return True
        except OSError:
            continue
    return False
