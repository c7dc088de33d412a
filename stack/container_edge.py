"""The Kamailio edge in ``compose.yaml`` (profile ``edge``) and the Asterisk behind it.

With the profile on, the edge takes the phones' SIP port and the compose Asterisk becomes a node behind
it (``AIPBX_NODE=1``), as ``make up NODES=2`` runs them on one machine (``docs/scaling.md``): the same
renderers (``stack.kamailio`` for ``kamailio.cfg``, ``stack.cluster`` for what a node is,
``stack.asterisk`` for its files), fed from the container's environment and secrets instead of ``.env``
and the stack's directories.

    python -m stack.container edge        prepares the edge's database in compose's PostgreSQL (its role,
                                          Kamailio's tables, the extensions' passwords, the nodes), renders
                                          kamailio.cfg, then execs Kamailio in the foreground
    python -m stack.container probe edge  Kamailio answers on its control socket

The container starts as root: it logs in to PostgreSQL as the database's owner to create the edge's
role and database, and binds the SIP ports; Kamailio then drops to the ``kamailio`` user with an
environment that holds no secret, so the phone-facing process cannot read the owner's password (its
share of ``secrets/`` is readable by root only) and knows only its own database login.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: Where the edge keeps its state (a volume): the rendered kamailio.cfg and its self-signed TLS
#: certificate, which phones outside the office trust and which must survive a restart.
STATE_DIR = Path("/var/lib/aipbx")
#: compose.yaml's PostgreSQL: its owner (POSTGRES_USER) and database.
DB_OWNER = "aipbx"


def node_index(env: Mapping[str, str]) -> int:
    """``AIPBX_NODE``: which node of the edge this host's Asterisk is (from 1); 0: no edge, phones
    register at this Asterisk itself.

    Raises:
        ValueError: not a number from 1 (or empty).
    """
    raw = env.get("AIPBX_NODE", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"AIPBX_NODE must be empty (no edge) or a node number from 1, not {raw!r}")
    return int(raw)


def edge_of(env: Mapping[str, str]):
    """The :class:`~stack.kamailio.EdgeConfig` of the edge container, from its environment and secrets.

    Raises:
        ContainerError: a secret is missing, a setting is malformed, or this host's Asterisk is not a
            node (``AIPBX_NODE`` empty: it would hold the SIP port the edge needs).
    """
    from aipbx.directory import load_directory
    from stack.cluster import compose_edge
    from stack.config import SettingsError, StackConfig, cluster_settings, sip_settings
    from stack.container import SETTINGS, ContainerError, require_secrets

    directory = load_directory(Path(env.get("AIPBX_EXTENSIONS_FILE", "asterisk/extensions.yaml")))
    wanted = ["AIPBX_EDGE_DB_PASSWORD", "POSTGRES_PASSWORD", *(f"AIPBX_SIP_PASSWORD_{ext.ext}" for ext in directory)]
    require_secrets(env, wanted)

    def setting(name: str) -> str:
        return env.get(name, "").strip() or SETTINGS[name]

    try:
        if not node_index(env):
            raise ContainerError(
                "the edge takes the phones' SIP port, so this host's Asterisk must be a node behind it: "
                "set AIPBX_NODE=1 in .env (docs/deploy.md, 'The Kamailio edge'), then up again"
            )
        base = StackConfig(
            name=setting("AIPBX_INSTANCE"),
            var_dir=STATE_DIR,
            recordings_dir=STATE_DIR / "recordings",  # unused: the edge carries signalling only
            cdr_dir=STATE_DIR / "cdr",  # unused
            directory=directory,
            secrets={name: env[name].strip() for name in wanted},
            sip_bind=setting("AIPBX_SIP_BIND"),
            sip_port=int(setting("AIPBX_SIP_PORT")),
            **sip_settings(env),
            **cluster_settings(env),
        )
        port = int(setting("AIPBX_POSTGRES_PORT"))
    except (SettingsError, ValueError) as exc:
        raise ContainerError(str(exc)) from None
    return compose_edge(base, db_port=port, admin_conninfo=f"host=127.0.0.1 port={port} user={DB_OWNER} dbname=aipbx")


def run_edge(env: Mapping[str, str]) -> None:
    """Prepare the edge (database, kamailio.cfg, TLS files), then become Kamailio."""
    from stack.container import ContainerError
    from stack.kamailio import Kamailio, KamailioError

    edge = Kamailio(edge_of(env))
    os.environ["PGPASSWORD"] = env["POSTGRES_PASSWORD"]  # libpq's, for the owner's login alone
    try:
        user = edge.prepare()
    except KamailioError as exc:
        raise ContainerError(str(exc)) from None
    nodes = ", ".join(f"{host}:{port}" for host, port in edge.edge.nodes)
    tls = f", TLS port {edge.edge.tls_port}" if edge.edge.tls_port else ""
    print(
        f"edge {edge.edge.name}: SIP {', '.join(edge.edge.listen)} port {edge.edge.port}{tls}; nodes {nodes}; "
        f"database {edge.edge.db_name}",
        flush=True,
    )
    command = edge.command(user)
    # No secret in Kamailio's environment: its children can read their own /proc/<pid>/environ.
    os.execvpe(
        command[0], command, {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
    )


def probe_edge(env: Mapping[str, str]) -> bool:
    """Kamailio answers on its control socket."""
    import subprocess
    import sys

    from stack.kamailio import Kamailio, KamailioError

    try:
        Kamailio(edge_of(env)).rpc("core.uptime", timeout=5.0)
    except (KamailioError, subprocess.TimeoutExpired) as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return False
    return True
