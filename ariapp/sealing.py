"""Recordings and transcripts encrypted at rest: AES-256-GCM with a data key per file, wrapped by a master key.

Theory of operation. Every file of a finished call (``caller.wav`` … ``metadata.json``) is sealed to
``<name>.enc`` and the clear file removed. Each sealed file has its own random 256-bit data key; the data
key is stored in the header, encrypted ("wrapped") with a master key named by a key id. Master keys come
from the environment, ``AIPBX_RECORDINGS_KEYS="kid1:<base64 32 bytes>,kid0:<base64 old key>"``: the first
seals, all of them open (by key id), so adding a new key in front rotates without losing old recordings,
and ``python -m ariapp.sealing rewrap --dir RECORDINGS`` moves old files to the current key by rewriting
only their headers (the audio ciphertext is copied, not re-encrypted).

File format (integers big-endian)::

    magic "AIPBXENC" (8) | version 1 (1) | key id length n (1) | key id (n, ASCII)
    | wrap nonce (12) | wrapped data key (32 + 16 tag)                  <- changed by rewrap
    | chunk size (4) | plaintext length (8) | nonce prefix (8)          <- the stream header
    | chunk 0 | chunk 1 | ... | chunk k-1

The data key is wrapped with AAD = magic | version | key id. Chunk ``i`` is ``chunk size`` plaintext
bytes (the last one shorter, possibly empty) sealed as ciphertext+tag with nonce = nonce prefix | i
(4 bytes) and AAD = magic | version | stream header | i (4) | final flag (1). So a changed byte, chunks
swapped or dropped, a file cut after any chunk, or a forged length all fail authentication; and the
plaintext length in the header (the console's Content-Length) is checked by the first chunk read.

Errors::

    SealError
    ├── KeyringError     AIPBX_RECORDINGS_KEYS is malformed (a start-up configuration error)
    ├── UnknownKeyError  the file's key id is not among the configured keys, or no keys are configured
    ├── FormatError      not a sealed file, or an unsupported version
    ├── TamperedError    authentication failed: wrong key, modified bytes, reordered chunks
    └── TruncatedError   the file ends before its final chunk, or has bytes after it

None is retryable.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import os
import struct
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV_VAR = "AIPBX_RECORDINGS_KEYS"
SUFFIX = ".enc"
MAGIC = b"AIPBXENC"
VERSION = 1
CHUNK_SIZE = 64 * 1024
TAG = 16
_WRAP_NONCE = 12
_WRAPPED = 32 + TAG
_STREAM = struct.Struct(">IQ8s")  # chunk size, plaintext length, nonce prefix


class SealError(Exception):
    retryable = False


class KeyringError(SealError, ValueError):
    pass


class UnknownKeyError(SealError):
    pass


class FormatError(SealError):
    pass


class TamperedError(SealError):
    pass


class TruncatedError(SealError):
    pass


# --- master keys ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Keyring:
    """Master keys by id; the first one seals."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError(f"{ENV_VAR} holds no key")
        for kid, key in self.keys:
            if not kid or len(kid) > 64 or not kid.isascii() or any(c in kid for c in ":, "):
                raise KeyringError(f"{ENV_VAR}: bad key id {kid!r} (1-64 ASCII characters, no ':' ',' or space)")
            if len(key) != 32:
                raise KeyringError(f"{ENV_VAR}: key {kid!r} is {len(key)} bytes, AES-256 needs 32")
        ids = [kid for kid, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyringError(f"{ENV_VAR}: a key id appears twice")

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    def key(self, kid: str) -> bytes:
        for candidate, key in self.keys:
            if candidate == kid:
                return key
        raise UnknownKeyError(f"sealed with master key {kid!r}, which is not in {ENV_VAR}")

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """``"kid1:base64,kid0:base64"`` -> keyring (raises KeyringError, never echoing key material)."""
        keys = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            kid, sep, b64 = item.partition(":")
            if not sep:
                raise KeyringError(f"{ENV_VAR}: each entry is id:base64key (entry {len(keys) + 1} has no ':')")
            try:
                key = base64.b64decode(b64.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"{ENV_VAR}: key {kid.strip()!r} is not valid base64") from None
            keys.append((kid.strip(), key))
        return cls(tuple(keys))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring | None:
        """The configured keyring, or None when the variable is unset or empty (recordings stay clear)."""
        env = os.environ if env is None else env
        text = env.get(ENV_VAR, "").strip()
        return cls.parse(text) if text else None


def new_key_spec(kid: str) -> str:
    """A fresh ``kid:base64`` entry (what ``make up`` writes to ``.env``)."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode('ascii')}"


# --- the header ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Header:
    kid: str
    wrap_nonce: bytes
    wrapped_key: bytes
    chunk_size: int
    length: int  # plaintext bytes
    nonce_prefix: bytes

    @property
    def stream(self) -> bytes:
        return _STREAM.pack(self.chunk_size, self.length, self.nonce_prefix)

    @property
    def chunks(self) -> int:
        return max(1, -(-self.length // self.chunk_size))

    def pack(self) -> bytes:
        kid = self.kid.encode("ascii")
        return MAGIC + bytes([VERSION, len(kid)]) + kid + self.wrap_nonce + self.wrapped_key + self.stream

    @property
    def size(self) -> int:
        return len(MAGIC) + 2 + len(self.kid) + _WRAP_NONCE + _WRAPPED + _STREAM.size

    def chunk_aad(self, index: int, final: bool) -> bytes:
        return MAGIC + bytes([VERSION]) + self.stream + struct.pack(">IB", index, final)

    def chunk_nonce(self, index: int) -> bytes:
        return self.nonce_prefix + struct.pack(">I", index)


def _wrap_aad(kid: str) -> bytes:
    return MAGIC + bytes([VERSION]) + kid.encode("ascii")


def read_header(handle: BinaryIO) -> Header:
    start = handle.read(len(MAGIC) + 2)
    if len(start) < len(MAGIC) + 2 or start[: len(MAGIC)] != MAGIC:
        raise FormatError("not a sealed recording (bad magic)")
    if start[len(MAGIC)] != VERSION:
        raise FormatError(f"sealed recording version {start[len(MAGIC)]} is not supported (expected {VERSION})")
    kid_len = start[len(MAGIC) + 1]
    rest = handle.read(kid_len + _WRAP_NONCE + _WRAPPED + _STREAM.size)
    if len(rest) < kid_len + _WRAP_NONCE + _WRAPPED + _STREAM.size:
        raise TruncatedError("sealed recording is truncated inside its header")
    try:
        kid = rest[:kid_len].decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("sealed recording has a corrupt key id") from None
    at = kid_len
    wrap_nonce, at = rest[at : at + _WRAP_NONCE], at + _WRAP_NONCE
    wrapped, at = rest[at : at + _WRAPPED], at + _WRAPPED
    chunk_size, length, prefix = _STREAM.unpack(rest[at:])
    if not 0 < chunk_size <= 16 * 1024 * 1024:
        raise FormatError(f"sealed recording has an impossible chunk size {chunk_size}")
    return Header(kid, wrap_nonce, wrapped, chunk_size, length, prefix)


def _unwrap(header: Header, keys: Keyring) -> bytes:
    try:
        return AESGCM(keys.key(header.kid)).decrypt(header.wrap_nonce, header.wrapped_key, _wrap_aad(header.kid))
    except InvalidTag:
        raise TamperedError(
            f"the data key does not open with master key {header.kid!r} "
            "(wrong key material for that id, or a modified header)"
        ) from None


def _wrap(data_key: bytes, keys: Keyring) -> tuple[str, bytes, bytes]:
    kid, master = keys.current
    nonce = os.urandom(_WRAP_NONCE)
    return kid, nonce, AESGCM(master).encrypt(nonce, data_key, _wrap_aad(kid))


# --- sealing -------------------------------------------------------------------------------------
def _write_atomically(target: Path, chunks: Iterator[bytes]) -> None:
    """Write to a 0600 temp file beside ``target``, fsync, rename over it, fsync the directory."""
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in chunks:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sealed_chunks(source: BinaryIO, length: int, keys: Keyring, chunk_size: int) -> Iterator[bytes]:
    data_key = AESGCM.generate_key(bit_length=256)
    kid, wrap_nonce, wrapped = _wrap(data_key, keys)
    header = Header(kid, wrap_nonce, wrapped, chunk_size, length, os.urandom(8))
    yield header.pack()
    aead = AESGCM(data_key)
    for index in range(header.chunks):
        final = index == header.chunks - 1
        want = length - index * chunk_size if final else chunk_size
        plain = source.read(want)
        if len(plain) != want:
            raise OSError(f"{getattr(source, 'name', 'source')} changed size while being sealed")
        yield aead.encrypt(header.chunk_nonce(index), plain, header.chunk_aad(index, final))
    if source.read(1):
        raise OSError(f"{getattr(source, 'name', 'source')} grew while being sealed")


def seal_file(path: Path, keys: Keyring, chunk_size: int = CHUNK_SIZE) -> Path:
    """Seal ``path`` to ``path.enc`` (0600, atomically) and remove the clear file; returns the new path."""
    target = path.with_name(path.name + SUFFIX)
    with path.open("rb") as source:
        length = os.fstat(source.fileno()).st_size
        _write_atomically(target, _sealed_chunks(source, length, keys, chunk_size))
    path.unlink()
    return target


def seal_directory(directory: Path, keys: Keyring) -> list[Path]:
    """Seal every clear file of one call's directory (idempotent: ``.enc`` and temp files are left alone)."""
    sealed = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.endswith(SUFFIX) and not path.name.startswith("."):
            sealed.append(seal_file(path, keys))
    directory.chmod(0o700)
    return sealed


def seal_leftovers(root: Path, keys: Keyring) -> int:
    """Seal the finished calls left in clear under ``root`` (a crash between writing a call's files and
    sealing them); returns how many directories were sealed.

    A call is finished once its ``metadata.json`` is written (the last file, at hang-up), so the
    directories of calls still in progress — MixMonitor may be writing their WAVs — are left alone.
    """
    count = 0
    if not root.is_dir():
        return 0
    for directory in sorted(root.iterdir()):
        if directory.is_dir() and (directory / "metadata.json").is_file():
            seal_directory(directory, keys)
            count += 1
    return count


# --- reading -------------------------------------------------------------------------------------
class SealedReader(io.RawIOBase):
    """A seekable, decrypting view of one sealed file; holds one decrypted chunk at a time."""

    def __init__(self, path: Path, keys: Keyring | None, name: str | None = None) -> None:
        super().__init__()
        self.name = name or str(path)
        self._file = path.open("rb")
        try:
            self.header = read_header(self._file)
            if keys is None:
                raise UnknownKeyError(f"{path} is sealed but {ENV_VAR} is not set")
            self._aead = AESGCM(_unwrap(self.header, keys))
            expected = self.header.size + self.header.length + self.header.chunks * TAG
            actual = os.fstat(self._file.fileno()).st_size
            if actual < expected:
                raise TruncatedError(f"{path} is truncated: {actual} bytes of {expected}")
            if actual > expected:
                raise TruncatedError(f"{path} has {actual - expected} unexpected bytes after its final chunk")
            self._pos = 0
            self._cached: tuple[int, bytes] | None = None
            self._chunk(0)  # authenticate the header's length now, before anyone trusts it
        except BaseException:
            self._file.close()
            raise

    @property
    def length(self) -> int:
        return self.header.length

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        header = self.header
        final = index == header.chunks - 1
        plain_len = header.length - index * header.chunk_size if final else header.chunk_size
        self._file.seek(header.size + index * (header.chunk_size + TAG))
        sealed = self._file.read(plain_len + TAG)
        if len(sealed) != plain_len + TAG:
            raise TruncatedError(f"{self.name} is truncated in chunk {index}")
        try:
            plain = self._aead.decrypt(header.chunk_nonce(index), sealed, header.chunk_aad(index, final))
        except InvalidTag:
            raise TamperedError(
                f"{self.name}: chunk {index} failed authentication (modified, reordered or truncated)"
            ) from None
        self._cached = (index, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.header.length}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self.header.length:
            return 0
        index, within = divmod(self._pos, self.header.chunk_size)
        plain = self._chunk(index)[within:]
        count = min(len(buffer), len(plain))
        buffer[:count] = plain[:count]
        self._pos += count
        return count

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._cached = None
        super().close()


def _locate(directory: Path, name: str) -> tuple[Path, bool] | None:
    sealed = directory / (name + SUFFIX)
    if sealed.is_file():
        return sealed, True
    clear = directory / name
    if clear.is_file():
        return clear, False
    return None


def exists(directory: Path, name: str) -> bool:
    """Whether the call directory holds ``name``, sealed or (a call from before encryption) in clear."""
    return _locate(Path(directory), name) is not None


def size(directory: Path, name: str) -> int:
    """Plaintext length in bytes (from the header for a sealed file; authenticated on open)."""
    found = _locate(Path(directory), name)
    if found is None:
        raise FileNotFoundError(Path(directory) / name)
    path, sealed = found
    if not sealed:
        return path.stat().st_size
    with path.open("rb") as handle:
        return read_header(handle).length


def open_recording(directory: Path, name: str, keys: Keyring | None = None) -> BinaryIO:
    """A binary, seekable file object with the plaintext of ``name`` (decrypting ``name.enc`` if sealed).

    Raises:
        FileNotFoundError: neither ``name.enc`` nor ``name`` exists.
        SealError: the sealed file cannot be opened (see the tree above).
    """
    directory = Path(directory)
    found = _locate(directory, name)
    if found is None:
        raise FileNotFoundError(directory / name)
    path, sealed = found
    if not sealed:
        return path.open("rb")
    return io.BufferedReader(SealedReader(path, keys, name=str(directory / name)), buffer_size=CHUNK_SIZE)


def read_bytes(directory: Path, name: str, keys: Keyring | None = None) -> bytes:
    with open_recording(directory, name, keys) as handle:
        return handle.read()


def read_text(directory: Path, name: str, keys: Keyring | None = None) -> str:
    return read_bytes(directory, name, keys).decode("utf-8")


def write_bytes(directory: Path, name: str, data: bytes, keys: Keyring | None = None) -> Path:
    """Replace ``name`` in a call directory with ``data``: sealed (``name.enc``) with ``keys``, else clear.

    Atomic either way (0600 temp file, rename), and the other form of the file is removed, so a reader
    never finds a stale copy beside the new one.
    """
    directory = Path(directory)
    clear, sealed = directory / name, directory / (name + SUFFIX)
    if keys is None:
        _write_atomically(clear, iter([data]))
        sealed.unlink(missing_ok=True)
        return clear
    _write_atomically(sealed, _sealed_chunks(io.BytesIO(data), len(data), keys, CHUNK_SIZE))
    clear.unlink(missing_ok=True)
    return sealed


# --- rotation --------------------------------------------------------------------------------------
def rewrap_file(path: Path, keys: Keyring) -> bool:
    """Re-wrap one sealed file's data key with the current master key; False if it already uses it."""
    with path.open("rb") as handle:
        header = read_header(handle)
        if header.kid == keys.current[0]:
            return False
        data_key = _unwrap(header, keys)
        kid, wrap_nonce, wrapped = _wrap(data_key, keys)
        new = Header(kid, wrap_nonce, wrapped, header.chunk_size, header.length, header.nonce_prefix)

        def pieces() -> Iterator[bytes]:
            yield new.pack()
            while block := handle.read(1024 * 1024):  # ciphertext copied as is
                yield block

        _write_atomically(path, pieces())
    return True


def rewrap_tree(root: Path, keys: Keyring) -> tuple[int, int]:
    """Rewrap every ``*.enc`` under ``root``; returns (rewrapped, already current)."""
    done = current = 0
    for path in sorted(Path(root).rglob("*" + SUFFIX)):
        if rewrap_file(path, keys):
            done += 1
        else:
            current += 1
    return done, current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ariapp.sealing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rewrap = sub.add_parser("rewrap", help=f"rewrap data keys to the first key of {ENV_VAR}")
    rewrap.add_argument("--dir", required=True, type=Path, help="recordings directory (searched recursively)")
    cat = sub.add_parser("cat", help="write a recording's plaintext to stdout")
    cat.add_argument("directory", type=Path, help="the call's directory")
    cat.add_argument("name", help="e.g. mixed.wav or metadata.json")
    sub.add_parser("newkey", help="print a fresh id:base64 master key entry")
    args = parser.parse_args(argv)
    if args.command == "newkey":
        print(new_key_spec(f"k{int.from_bytes(os.urandom(4), 'big'):08x}"))
        return 0
    try:
        keys = Keyring.from_env()
        if args.command == "rewrap":
            if keys is None:
                parser.error(f"{ENV_VAR} is not set")
            done, current = rewrap_tree(args.dir, keys)
            print(f"rewrapped {done} file(s) to key {keys.current[0]!r}; {current} already used it")
        else:
            with open_recording(args.directory, args.name, keys) as handle:
                while block := handle.read(CHUNK_SIZE):
                    sys.stdout.buffer.write(block)
    except (SealError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
