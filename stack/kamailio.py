"""The Kamailio edge in front of several Asterisk nodes: its configuration, its database, its process.

Phones register to Kamailio (digest auth against ``subscriber``, contacts in ``location``, both in a
PostgreSQL database of the edge's own), and their calls are dispatched to the nodes; each node rings
extensions back through the edge (``docs/scaling.md``). Everything is rendered from what a single
node uses: ``asterisk/extensions.yaml`` and the extensions' passwords in ``.env``.

A phone's call goes to the node with the fewest calls in progress (the dispatcher's call-load
algorithm, 10: it counts each call it sent to a node until its BYE). The node list is the
``dispatcher`` table of the same database, which the edge reads at start; :meth:`Kamailio.set_nodes`
rewrites it and tells the running edge which nodes came and went (``dispatcher.add`` /
``dispatcher.remove`` over the ctl socket) — no restart, no call dropped, and the nodes that stay
keep their call counts, which ``dispatcher.reload`` would reset to zero. (A table rather than a list
file: the edge runs as the ``kamailio`` user, which need not be able to read the stack's directories.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from stack.config import REPO, StackConfig

TEMPLATE = REPO / "kamailio" / "templates" / "kamailio.cfg"
SCHEMA_DIR = Path("/usr/share/kamailio/postgres")
#: The Debian schema files the edge needs: the version table, subscriber (auth_db), location (usrloc).
SCHEMA_FILES = ("standard-create.sql", "auth_db-create.sql", "usrloc-create.sql", "dispatcher-create.sql")
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
)
DISPATCHER_SET = 1
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
Address = tuple[str, int]


class KamailioError(RuntimeError):
    """Kamailio is missing, its database cannot be prepared, or it did not start; the message says why."""


@dataclass
class EdgeConfig:
    """One Kamailio edge: where phones reach it and which nodes it dispatches to."""

    name: str
    var_dir: Path
    listen: tuple[str, ...]  # addresses phones (and the nodes) reach it at
    port: int
    nodes: list[Address]
    #: extension -> password (the same credentials as the nodes' PJSIP endpoints would have)
    subscribers: dict[str, str]
    db_password: str
    #: The nodes' registration lookup (HTTP, ``/registered/<ext>``); 0: the SIP port + 2.
    lookup_port: int = 0
    #: The address (one of ``listen``) the nodes reach the edge at: requests to phones come from it, and
    #: the nodes trust it; empty: the first of ``listen``.
    node_side: str = ""
    #: Where the registration lookup listens (any address of this host); empty: :attr:`address`'s.
    #: It answers only the nodes (and this host's own loopback), never a phone.
    lookup_address: str = ""
    #: SIP over TLS on every listen address (phones outside the office); 0: none.
    tls_port: int = 0
    #: The TLS certificate and key; None: a self-signed one made in ``tls_dir`` (stack.selfsigned).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ping_interval: int = 2
    #: Seconds between the OPTIONS the edge sends each phone registered from behind a NAT, keeping its
    #: NAT's mapping open so that calls can reach it (most NATs forget an idle UDP mapping after 30 s+).
    nat_ping_interval: int = 20
    #: Calls in progress a node may hold (the dispatcher's ``maxload``); 0: no cap. With every node at
    #: its cap a new call is refused at the edge (503).
    node_max_calls: int = 0
    pike_density: int = 40  # requests per 2 s from one address before it is banned
    ban_seconds: int = 300
    children: int = 2
    #: The PostgreSQL port on 127.0.0.1 (compose.yaml's database listens on ``AIPBX_POSTGRES_PORT``).
    db_port: int = 5432
    admin_conninfo: tuple[str, ...] = field(default=("host=127.0.0.1 user=postgres dbname=postgres", "dbname=postgres"))

    @property
    def db_name(self) -> str:
        return "aipbx_edge_" + re.sub(r"[^a-z0-9]", "_", self.name.lower())

    @property
    def db_user(self) -> str:
        return self.db_name

    @property
    def db_url(self) -> str:
        return f"postgres://{self.db_user}:{quote(self.db_password, safe='')}@127.0.0.1:{self.db_port}/{self.db_name}"

    @property
    def lookup(self) -> Address:
        """Where the registration lookup listens."""
        return self.lookup_address or self.address[0], self.lookup_port or self.port + 2

    @property
    def lookup_url(self) -> str:
        """What a node's dialplan asks whether an extension is registered (``<url>/<ext>``)."""
        return lookup_url_of(self.lookup)

    @property
    def address(self) -> Address:
        """Where the nodes send requests for phones (and what they trust)."""
        return self.node_side or self.listen[0], self.port

    @property
    def etc_dir(self) -> Path:
        return self.var_dir / "kamailio"

    @property
    def tls_dir(self) -> Path:
        return self.var_dir / "tls"

    @property
    def tls_files(self) -> tuple[Path, Path]:
        """The certificate and key the TLS listener uses (given, or the self-signed pair's paths)."""
        if self.tls_cert is not None and self.tls_key is not None:
            return self.tls_cert, self.tls_key
        return self.tls_dir / "edge-cert.pem", self.tls_dir / "edge-key.pem"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "log" / "kamailio.log"

    @property
    def ctl_dir(self) -> Path:
        """Where the edge makes its ctl socket, as the ``kamailio`` user: under /run when we are root (the
        stack's own directories may sit below a 0700 one, e.g. a test's temporary directory)."""
        if os.geteuid() == 0 and _run_as() is not None:
            return Path("/run/aipbx") / f"edge-{re.sub(r'[^A-Za-z0-9_.-]', '_', self.name)}"
        return self.run_dir

    @property
    def live_tls_files(self) -> tuple[Path, Path]:
        """Where the running edge reads its TLS certificate and key: copies of :attr:`tls_files` beside
        the ctl socket, owned by the ``kamailio`` user (its TLS module loads them after dropping root)."""
        return self.ctl_dir / "tls-cert.pem", self.ctl_dir / "tls-key.pem"

    @property
    def ctl_socket(self) -> Path:
        return self.ctl_dir / "kamailio-ctl.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kamailio.pid"


def subscribers_of(cfg: StackConfig) -> dict[str, str]:
    """Every extension of the directory with its password (``.env``), as the edge authenticates them."""
    return {ext.ext: cfg.sip_password(ext.ext) for ext in cfg.directory}


def _module_dir() -> str:
    for candidate in MODULE_DIRS:
        if (Path(candidate) / "dispatcher.so").exists():
            return candidate
    raise KamailioError(
        "Kamailio's modules are not installed (Debian: apt-get install kamailio kamailio-postgres-modules)"
    )


def lookup_url_of(lookup: Address) -> str:
    """The registration lookup's URL for a node's dialplan (``<url>/<ext>`` -> ``yes``/``no``)."""
    return f"http://{lookup[0]}:{lookup[1]}/registered"


def node_uri(node: Address) -> str:
    return f"sip:{node[0]}:{node[1]}"


def dispatcher_rows(nodes: Iterable[Address], socket: Address, max_calls: int = 0) -> list[tuple[int, str, int, str]]:
    """The ``dispatcher`` rows (setid, destination, flags, attrs): every node in set 1, probed (flag 8:
    OPTIONS keep-alives), always reached from the edge's first address (``socket``), the one the nodes
    trust, whichever address the call came in on.

    Each node's ``duid`` (what the call-load algorithm counts calls against) is its address, so it stays
    the same whatever else joins or leaves the list; ``maxload`` caps its calls when ``max_calls`` > 0.
    """
    cap = f";maxload={max_calls}" if max_calls > 0 else ""
    return [
        (DISPATCHER_SET, node_uri((host, port)), 8, f"duid={host}_{port};socket=udp:{socket[0]}:{socket[1]}{cap}")
        for host, port in nodes
    ]


def _tls_lines(edge: EdgeConfig) -> tuple[str, str]:
    """The TLS listeners (global section) and the tls module's lines; empty without a TLS port."""
    if not edge.tls_port:
        return "# no TLS listener (EdgeConfig.tls_port = 0)", ""
    if not any((Path(d) / "tls.so").exists() for d in MODULE_DIRS):
        raise KamailioError("Kamailio's TLS module is not installed (Debian: apt-get install kamailio-tls-modules)")
    if edge.tls_cert is None or edge.tls_key is None:
        from stack.selfsigned import ensure_certificate

        ensure_certificate(*edge.tls_files, edge.listen)
    cert, key = edge.live_tls_files  # copied there by Kamailio.start
    listen = "\n".join(["enable_tls=yes", *(f"listen=tls:{address}:{edge.tls_port}" for address in edge.listen)])
    module = "\n".join(
        [
            'loadmodule "tls.so"',
            f'modparam("tls", "certificate", "{cert}")',
            f'modparam("tls", "private_key", "{key}")',
            'modparam("tls", "tls_method", "TLSv1.2+")',
            # phones authenticate with their SIP password, not with a client certificate
            'modparam("tls", "verify_certificate", 0)',
            'modparam("tls", "require_certificate", 0)',
        ]
    )
    return listen, module


def render(edge: EdgeConfig) -> list[Path]:
    """Write ``kamailio.cfg`` into the edge's directory (and the self-signed TLS certificate into its
    ``tls_dir`` when it needs one); returns the files written."""
    if edge.address[0] not in edge.listen:
        raise KamailioError(f"the edge's node side {edge.address[0]} is not one of its listen addresses {edge.listen}")
    tls_listen, tls_module = _tls_lines(edge)
    lookup_host, lookup_port = edge.lookup
    values = {
        "CHILDREN": str(edge.children),
        "LISTEN": "\n".join(f"listen=udp:{address}:{edge.port}" for address in edge.listen),
        "TLS_LISTEN": tls_listen,
        "TLS_MODULE": tls_module,
        "MODULE_DIR": _module_dir(),
        "LOOKUP_LISTEN": f"{lookup_host}:{lookup_port}",
        "LOOKUP_PORT": str(lookup_port),
        "CTL_SOCKET": str(edge.ctl_socket),
        "DB_URL": edge.db_url,
        "PING_INTERVAL": str(edge.ping_interval),
        "NAT_PING_INTERVAL": str(edge.nat_ping_interval),
        "PIKE_DENSITY": str(edge.pike_density),
        "BAN_SECONDS": str(edge.ban_seconds),
    }

    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KamailioError(f"kamailio.cfg: no value for @@{match.group(1)}@@")
        return values[match.group(1)]

    edge.etc_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = edge.etc_dir / "kamailio.cfg"
    cfg_path.write_text(_PLACEHOLDER.sub(sub, TEMPLATE.read_text(encoding="utf-8")), encoding="utf-8")
    cfg_path.chmod(0o640)  # holds the database password
    return [cfg_path]


# --- the database: subscriber and location ----------------------------------------------------------
def _admin_connect(edge: EdgeConfig):
    import psycopg

    last: Exception | None = None
    for conninfo in edge.admin_conninfo:
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            last = exc
    raise KamailioError(f"cannot connect to PostgreSQL as its administrator: {last}")


def prepare_database(edge: EdgeConfig) -> None:
    """Create the edge's role and database (once), its tables from Kamailio's own schema files (once),
    and make ``subscriber`` exactly the directory's extensions and passwords and ``dispatcher`` the
    nodes (every start)."""
    import psycopg
    from psycopg import sql

    with _admin_connect(edge) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (edge.db_user,)).fetchone()
        verb = "ALTER" if role else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(edge.db_user), sql.Literal(edge.db_password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (edge.db_name,)).fetchone():
            owner = sql.Identifier(edge.db_user)
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(edge.db_name), owner))
    with psycopg.connect(_libpq_url(edge), connect_timeout=5) as conn:
        exists = conn.execute("SELECT to_regclass('public.subscriber')").fetchone()
        if not exists or exists[0] is None:
            for name in SCHEMA_FILES:
                path = SCHEMA_DIR / name
                if not path.exists():
                    raise KamailioError(f"{path} is missing (Debian: apt-get install kamailio-postgres-modules)")
                conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        with conn.transaction():
            conn.execute("DELETE FROM subscriber")
            for ext, password in sorted(edge.subscribers.items()):
                conn.execute("INSERT INTO subscriber (username, password) VALUES (%s, %s)", (ext, password))
        write_nodes(conn, edge)


def write_nodes(conn, edge: EdgeConfig) -> None:
    """Make the ``dispatcher`` table exactly ``edge.nodes`` (one transaction)."""
    with conn.transaction():
        conn.execute("DELETE FROM dispatcher")
        for setid, destination, flags, attrs in dispatcher_rows(edge.nodes, edge.address, edge.node_max_calls):
            conn.execute(
                "INSERT INTO dispatcher (setid, destination, flags, attrs, description) VALUES (%s, %s, %s, %s, %s)",
                (setid, destination, flags, attrs, "aipbx node"),
            )


def _libpq_url(edge: EdgeConfig) -> str:
    return edge.db_url.replace("postgres://", "postgresql://", 1)


def drop_database(edge: EdgeConfig) -> None:
    """Remove the edge's database and role (test sessions)."""
    from psycopg import sql

    with _admin_connect(edge) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(edge.db_name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(edge.db_user)))


# --- the process ------------------------------------------------------------------------------------
class Kamailio:
    """The edge's Kamailio process: render, start, reload the node list, stop."""

    def __init__(self, edge: EdgeConfig) -> None:
        self.edge = edge
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        if self.running():
            raise KamailioError(f"the edge {self.edge.name} is already running (pid {self._pid()})")
        user = self.prepare()
        with open(self.edge.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(user),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.edge.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KamailioError(f"kamailio exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.edge.ctl_socket.exists() and self._rpc_ok("core.uptime"):
                return
            time.sleep(0.2)
        self.stop()
        raise KamailioError(f"kamailio did not answer on {self.edge.ctl_socket} in {timeout:.0f} s:\n{self.log_tail()}")

    def prepare(self) -> tuple[str, str, int, int] | None:
        """Everything before the process: the database, ``kamailio.cfg``, the directories, the TLS files,
        and Kamailio's own check of the configuration. Returns the user it is to run as (None: whoever
        starts it). ``make up`` starts the process next (:meth:`start`); the edge's container execs it.

        Raises:
            KamailioError: Kamailio is missing, the database cannot be prepared, or the configuration
                does not parse.
        """
        if shutil.which("kamailio") is None or shutil.which("kamcmd") is None:
            raise KamailioError("Kamailio is not installed (apt-get install kamailio kamailio-postgres-modules)")
        prepare_database(self.edge)
        render(self.edge)
        for directory in (self.edge.run_dir, self.edge.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user:  # the ctl socket is made after the privileges are dropped
            self.edge.ctl_dir.mkdir(parents=True, exist_ok=True)
            os.chown(self.edge.ctl_dir, *user[2:])
            self.edge.ctl_dir.chmod(0o750)
        if self.edge.tls_port:
            self._install_tls_files(user)
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(self.edge.etc_dir / "kamailio.cfg")], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise KamailioError(f"kamailio.cfg does not parse:\n{check.stderr[-3000:]}")
        self.edge.ctl_socket.unlink(missing_ok=True)
        return user

    def command(self, user: tuple[str, str, int, int] | None) -> list[str]:
        """Kamailio in the foreground, logging to stderr, dropping to ``user`` once its sockets are bound."""
        return [
            "kamailio",
            *("-f", str(self.edge.etc_dir / "kamailio.cfg")),
            "-DD",  # foreground, with its child processes
            "-E",  # log to stderr (make up: our log file; the container: its log)
            *("-m", "64", "-M", "8"),  # shared / per-process memory (MB)
            *("-Y", str(self.edge.ctl_dir)),
            *(("-u", user[0], "-g", user[1]) if user else ()),
        ]

    def _install_tls_files(self, user: tuple[str, str, int, int] | None) -> None:
        """Copy the certificate and key where the edge reads them once it no longer runs as root (its TLS
        module loads them in each process, after the privileges are dropped)."""
        for source, target, mode in zip(self.edge.tls_files, self.edge.live_tls_files, (0o644, 0o600), strict=True):
            if not source.exists():
                raise KamailioError(f"TLS: {source} does not exist")
            target.unlink(missing_ok=True)
            target.touch(mode=mode)
            if user:
                os.chown(target, *user[2:])
            target.write_bytes(source.read_bytes())

    def rpc(self, *command: str, timeout: float = 5.0) -> str:
        """A kamcmd call over the ctl socket; returns its output.

        Raises:
            KamailioError: the command failed.
        """
        result = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.edge.ctl_socket}", *command], capture_output=True, text=True, timeout=timeout
        )
        # kamcmd exits 0 on an RPC that failed, printing "error: <code> - <reason>".
        failed = result.returncode != 0 or result.stdout.lstrip().startswith("error") or "error:" in result.stderr
        if failed:
            raise KamailioError(f"kamcmd {' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _rpc_ok(self, *command: str) -> bool:
        try:
            self.rpc(*command, timeout=2.0)
            return True
        except (KamailioError, subprocess.TimeoutExpired):
            return False

    def set_nodes(self, nodes: Sequence[Address]) -> None:
        """Make the node list ``nodes``, in the table (for the next start) and in the running edge.

        The running edge is told only what changed (``dispatcher.remove`` for each node that left,
        ``dispatcher.add`` for each that joined): calls in progress go on, and the nodes that stay keep
        their call counts and probing state. (``dispatcher.reload`` would read the same table but reset
        every node's count to zero: the next calls would go to a node already full of them.)
        """
        import psycopg

        self.edge.nodes = list(nodes)
        with psycopg.connect(_libpq_url(self.edge), connect_timeout=5) as conn:
            write_nodes(conn, self.edge)
        wanted = {node_uri(node): row for node, row in zip(nodes, self._rows(nodes), strict=True)}
        present = {node_uri(node) for node in self.node_states()}
        for uri in sorted(present - wanted.keys()):
            self._list_change("dispatcher.remove", str(DISPATCHER_SET), uri)
        for uri, (setid, _, flags, attrs) in wanted.items():
            if uri not in present:
                # "s:": kamcmd sends the attributes as a string whatever they look like
                self._list_change("dispatcher.add", str(setid), uri, str(flags), "0", f"s:{attrs}")

    def reload_nodes(self) -> None:
        """Re-read the whole node list from the table (``dispatcher.reload``): every call count restarts
        at zero. For a table edited by hand; :meth:`set_nodes` keeps the counts."""
        self._list_change("dispatcher.reload")

    def _rows(self, nodes: Sequence[Address]) -> list[tuple[int, str, int, str]]:
        return dispatcher_rows(nodes, self.edge.address, self.edge.node_max_calls)

    def _list_change(self, *command: str) -> None:
        # The dispatcher accepts one list change a second (reload_delta): another within it is refused
        # ("Ongoing reload") and must be asked again.
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self.rpc(*command)
                return
            except KamailioError as exc:
                if "ongoing reload" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def node_states(self) -> dict[Address, str]:
        """Each node's dispatcher flags: ``AP`` active (probed), ``IP`` inactive, ``TP`` trying."""
        return parse_dispatcher_list(self.rpc("dispatcher.list"))

    def node_loads(self) -> dict[Address, int]:
        """Each node's calls in progress as the edge counts them (the call-load algorithm's ``DLGLOAD``)."""
        return parse_dispatcher_loads(self.rpc("dispatcher.list"))

    def _pid(self) -> int | None:
        from stack.procs import pid_in  # not at the top: the edge's image carries no process manager

        return pid_in(self.edge.pid_file)

    def running(self) -> bool:
        return self._pid() is not None

    def stop(self, timeout: float = 10.0) -> None:
        pid = self._pid()
        if pid is not None:
            try:
                os.killpg(pid, 15)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid, self.proc):
                time.sleep(0.1)
            if _alive(pid, self.proc):
                os.killpg(pid, 9)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.edge.pid_file.unlink(missing_ok=True)
        self.edge.ctl_socket.unlink(missing_ok=True)
        if self.edge.ctl_dir != self.edge.run_dir:
            shutil.rmtree(self.edge.ctl_dir, ignore_errors=True)
            try:
                self.edge.ctl_dir.parent.rmdir()  # /run/aipbx, once no edge is left
            except OSError:
                pass

    def log_tail(self, lines: int = 40) -> str:
        if not self.edge.log_path.exists():
            return ""
        return "\n".join(self.edge.log_path.read_text(errors="replace").splitlines()[-lines:])


def _run_as() -> tuple[str, str, int, int] | None:
    """The Debian package's ``kamailio`` user (name, group, uid, gid): the edge faces the network, so it
    does not run as root. None when there is no such user (then it runs as whoever started it)."""
    import grp
    import pwd

    try:
        entry = pwd.getpwnam("kamailio")
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name, entry.pw_uid, entry.pw_gid
    except KeyError:
        return None


def _alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None and proc.pid == pid:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def parse_dispatcher_list(text: str) -> dict[Address, str]:
    """``kamcmd dispatcher.list`` output -> {(host, port): flags}."""
    return {uri: value for uri, value in _per_destination(text, "FLAGS")}


def parse_dispatcher_loads(text: str) -> dict[Address, int]:
    """``kamcmd dispatcher.list`` output -> {(host, port): calls in progress (``DLGLOAD``)}."""
    return {uri: int(value) for uri, value in _per_destination(text, "DLGLOAD")}


def _per_destination(text: str, key: str) -> Iterable[tuple[Address, str]]:
    """The value of ``key`` in each destination's block of ``dispatcher.list``, with the destination."""
    uri: Address | None = None
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"URI:\s*sip:([^:;\s]+):(\d+)", line)
        if match:
            uri = (match.group(1), int(match.group(2)))
            continue
        match = re.match(key + r":\s*(\S+)", line)
        if match and uri is not None:
            yield uri, match.group(1)
            uri = None
