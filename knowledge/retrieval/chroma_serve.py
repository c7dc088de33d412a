"""``python -m knowledge.retrieval.chroma_serve --path DIR --host HOST --port PORT``: the stack's Chroma server.

chromadb's own Python server (``chromadb.server.fastapi``, served by uvicorn) with its token
authentication on: every request but the heartbeat and version must carry
``Authorization: Bearer <AIPBX_CHROMA_TOKEN>``, else it gets ``403``. The server the wheel also ships,
``chroma run`` (Rust), ignores Chroma's authentication settings, so any local process could write
into an owner's knowledge through it.

Storage is the same as ``chroma run``'s (chromadb's Rust core under ``--path``): a directory written
by one is served by the other. The token comes from the environment (``AIPBX_CHROMA_TOKEN``), never
from the command line, where ``ps`` would show it; without one the server refuses to start.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Final

__all__ = ["TOKEN_ENV", "build_app", "main"]

TOKEN_ENV: Final = "AIPBX_CHROMA_TOKEN"
_TOKEN_PROVIDER: Final = "chromadb.auth.token_authn.TokenAuthenticationServerProvider"


def build_app(data_dir: Path, token: str) -> Any:
    """chromadb's FastAPI application on ``data_dir``, refusing requests without ``token``.

    Raises:
        ValueError: ``token`` is empty or has characters Chroma refuses (it takes printable ASCII).
    """
    if not token or not token.isascii() or not token.isprintable() or token != token.strip():
        raise ValueError(f"{TOKEN_ENV} must be a non-empty token of printable ASCII without spaces at its ends")
    # chromadb's server module says ORJSONResponse is deprecated in the installed FastAPI, once per
    # start: its code, not ours, and it still works.
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated.*")
    from chromadb import errors
    from chromadb.config import Settings
    from chromadb.server.fastapi import FastAPI

    # chromadb 1.5.9's server answers a bad argument (e.g. a vector of the wrong dimension) as
    # "InvalidArgument", a name its own client does not know ("InvalidArgumentError", as the Rust
    # server says): the client would raise a bare Exception instead of InvalidArgumentError.
    known_name = classmethod(lambda cls: "InvalidArgumentError")
    errors.InvalidArgumentError.name = known_name  # type: ignore[method-assign,assignment]

    settings = Settings(
        is_persistent=True,
        persist_directory=str(data_dir),
        anonymized_telemetry=False,
        allow_reset=False,
        chroma_server_authn_provider=_TOKEN_PROVIDER,
        chroma_server_authn_credentials=token,
    )
    return FastAPI(settings).app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge.retrieval.chroma_serve", description=__doc__)
    parser.add_argument("--path", type=Path, required=True, help="persistence directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(f"chroma_serve: {TOKEN_ENV} is not set: the knowledge store never runs without a token", file=sys.stderr)
        return 2
    args.path.mkdir(parents=True, exist_ok=True)
    import uvicorn

    app = build_app(args.path, token)
    # No access log: one line per knowledge query is noise, and uvicorn's errors still go to the log.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
