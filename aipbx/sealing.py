"""Recordings and transcripts encrypted at rest: AES-256-GCM with a data key per file, wrapped by a master key.

Theory of operation. Every file of a finished call (``caller.wav`` … ``metadata.json``) is sealed to
``<name>.enc`` and the clear file removed. Each sealed file has its own random 256-bit data key; the data
key is stored in the header, encrypted ("wrapped") with a master key named by a key id. Master keys come
from the environment, ``AIPBX_RECORDINGS_KEYS="kid1:<base64 32 bytes>,kid0:<base64 old key>"``: the first
seals, all of them open (by key id), so adding a new key in front rotates without losing old recordings,
and ``python -m aipbx.sealing rewrap --dir RECORDINGS`` moves old files to the current key by rewriting
only their headers (the audio ciphertext is copied, not re-encrypted).

Each file is bound to where it belongs: the call id (the name of its directory) and its own name
(``caller.wav``) are in every chunk's associated data, so a sealed file moved to another call's folder,
or renamed within one (``caller.wav.enc`` swapped with ``callee.wav.enc``), does not open
(:class:`MisplacedError`, which names both places). Files of version 1 (sealed before the binding)
still open, unbound; ``python -m aipbx.sealing bind --dir RECORDINGS`` reseals them as version 2.

File format (integers big-endian)::

    magic "AIPBXENC" (8) | version 2 (1) | key id length n (1) | key id (n, ASCII)
    | sealed binding length m (2) | sealed binding (m)                 <- version 2 only
    | wrap nonce (12) | wrapped data key (32 + 16 tag)                  <- changed by rewrap
    | chunk size (4) | plaintext length (8) | nonce prefix (8)          <- the stream header
    | chunk 0 | chunk 1 | ... | chunk k-1

    binding = call id length (2) | call id (UTF-8) | name length (2) | name (UTF-8)
    sealed binding = AES-GCM(data key, nonce prefix | FFFFFFFF, binding, AAD = magic | version | "binding")

The data key is wrapped with AAD = magic | version | key id. Chunk ``i`` is ``chunk size`` plaintext
bytes (the last one shorter, possibly empty) sealed as ciphertext+tag with nonce = nonce prefix | i
(4 bytes) and AAD = magic | version | stream header | binding (version 2) | i (4) | final flag (1). So a
changed byte, chunks swapped or dropped, a file cut after any chunk, a forged length, or a file in
another place than it was sealed for all fail authentication; and the plaintext length in the header
(the console's Content-Length) is checked by the first chunk read. The sealed binding in the header only
serves the error message (it is encrypted: no call id is readable in a sealed file); the chunks are
authenticated with the binding of the place the file is opened from.

Sealing never loses audio: a clear file is removed only after its sealed copy is on disk (fsync, rename)
and the clear file did not change meanwhile; one that cannot be sealed stays in clear, and
:func:`aipbx.sealing_sweep.sweep` later finds the clear files of finished calls (the ARI app down, a
failed seal, a crash) and seals them.

Errors::

    SealError
    ├── KeyringError     AIPBX_RECORDINGS_KEYS is malformed (a start-up configuration error)
    ├── UnknownKeyError  the file's key id is not among the configured keys, or no keys are configured
    ├── FormatError      not a sealed file, or an unsupported version
    ├── TamperedError    authentication failed: wrong key, modified bytes, reordered chunks
    │   └── MisplacedError  sealed for another call or another name (moved or swapped)
    ├── TruncatedError   the file ends before its final chunk, or has bytes after it
    └── NotSealedError   some files of a call could not be sealed (they stay in clear for the sweep)

None is retryable.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import fcntl
import io
import os
import secrets
import struct
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV_VAR = "AIPBX_RECORDINGS_KEYS"
SUFFIX = ".enc"
MAGIC = b"AIPBXENC"
VERSION = 2  # what is written; version 1 (no binding to a call and name) is still read
VERSIONS = (1, 2)
CHUNK_SIZE = 64 * 1024
TAG = 16
_WRAP_NONCE = 12
_WRAPPED = 32 + TAG
_STREAM = struct.Struct(">IQ8s")  # chunk size, plaintext length, nonce prefix
_BINDING_INDEX = 0xFFFFFFFF  # the sealed binding's nonce suffix: never a chunk's (that needs 256 TiB)


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


class MisplacedError(TamperedError):
    pass


class TruncatedError(SealError):
    pass


class NotSealedError(SealError):
    """Some files of one call directory could not be sealed; ``failed`` maps each to its error."""

    def __init__(self, directory: Path, failed: dict[Path, BaseException]) -> None:
        self.failed = failed
        names = ", ".join(f"{path.name} ({exc})" for path, exc in failed.items())
        super().__init__(f"{directory}: {len(failed)} file(s) left in clear: {names}")


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
        keys: list[tuple[str, bytes]] = []
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
def binding(call_id: str, name: str) -> bytes:
    """What a sealed file is bound to: its call (the directory's name) and its own name, length-prefixed."""
    call, file = call_id.encode("utf-8"), name.encode("utf-8")
    return struct.pack(">H", len(call)) + call + struct.pack(">H", len(file)) + file


def binding_of(path: Path) -> bytes:
    """The binding of a (clear or sealed) file from where it lies: ``<call_id>/<name>[.enc]``.

    Not resolved through symlinks (a symlinked recordings root keeps its call folders' names), but
    made absolute so that ``.`` as a directory still names the call.
    """
    path = Path(os.path.abspath(path))
    return binding(path.parent.name, path.name.removesuffix(SUFFIX))


def describe_binding(raw: bytes) -> str:
    """``call 'c-1', caller.wav`` for a binding (for error messages; never raises)."""
    try:
        (n,) = struct.unpack_from(">H", raw, 0)
        call = raw[2 : 2 + n].decode("utf-8")
        (m,) = struct.unpack_from(">H", raw, 2 + n)
        name = raw[4 + n : 4 + n + m].decode("utf-8")
        if 4 + n + m != len(raw):
            raise ValueError
    except (struct.error, UnicodeDecodeError, ValueError):
        return f"an unreadable binding {raw[:40]!r}"
    return f"call {call!r}, {name}"


@dataclass(frozen=True, slots=True)
class Header:
    kid: str
    wrap_nonce: bytes
    wrapped_key: bytes
    chunk_size: int
    length: int  # plaintext bytes
    nonce_prefix: bytes
    version: int = VERSION
    binding: bytes = b""  # version 2: binding() sealed with the data key; version 1 files have none

    @property
    def stream(self) -> bytes:
        return _STREAM.pack(self.chunk_size, self.length, self.nonce_prefix)

    @property
    def chunks(self) -> int:
        return max(1, -(-self.length // self.chunk_size))

    @property
    def _bound(self) -> bytes:
        return struct.pack(">H", len(self.binding)) + self.binding if self.version >= 2 else b""

    def pack(self) -> bytes:
        kid = self.kid.encode("ascii")
        return (
            MAGIC
            + bytes([self.version, len(kid)])
            + kid
            + self._bound
            + self.wrap_nonce
            + self.wrapped_key
            + self.stream
        )

    @property
    def size(self) -> int:
        return len(MAGIC) + 2 + len(self.kid) + len(self._bound) + _WRAP_NONCE + _WRAPPED + _STREAM.size

    def chunk_aad(self, index: int, final: bool, bound_to: bytes = b"") -> bytes:
        """Version 2 authenticates ``bound_to``, the binding of the place the file is opened from."""
        place = bound_to if self.version >= 2 else b""
        return MAGIC + bytes([self.version]) + self.stream + place + struct.pack(">IB", index, final)

    def chunk_nonce(self, index: int) -> bytes:
        return self.nonce_prefix + struct.pack(">I", index)

    @property
    def binding_aad(self) -> bytes:
        return MAGIC + bytes([self.version]) + b"binding"


def _wrap_aad(kid: str, version: int) -> bytes:
    return MAGIC + bytes([version]) + kid.encode("ascii")


def _read_exactly(handle: BinaryIO, count: int) -> bytes:
    data = handle.read(count)
    if len(data) < count:
        raise TruncatedError("sealed recording is truncated inside its header")
    return data


def read_header(handle: BinaryIO) -> Header:
    start = handle.read(len(MAGIC) + 2)
    if len(start) < len(MAGIC) + 2 or start[: len(MAGIC)] != MAGIC:
        raise FormatError("not a sealed recording (bad magic)")
    version = start[len(MAGIC)]
    if version not in VERSIONS:
        raise FormatError(f"sealed recording version {version} is not supported (expected one of {VERSIONS})")
    try:
        kid = _read_exactly(handle, start[len(MAGIC) + 1]).decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("sealed recording has a corrupt key id") from None
    bound = b""
    if version >= 2:
        (bound_len,) = struct.unpack(">H", _read_exactly(handle, 2))
        bound = _read_exactly(handle, bound_len)
    rest = _read_exactly(handle, _WRAP_NONCE + _WRAPPED + _STREAM.size)
    wrap_nonce, wrapped = rest[:_WRAP_NONCE], rest[_WRAP_NONCE : _WRAP_NONCE + _WRAPPED]
    chunk_size, length, prefix = _STREAM.unpack(rest[_WRAP_NONCE + _WRAPPED :])
    if not 0 < chunk_size <= 16 * 1024 * 1024:
        raise FormatError(f"sealed recording has an impossible chunk size {chunk_size}")
    return Header(kid, wrap_nonce, wrapped, chunk_size, length, prefix, version, bound)


def _unwrap(header: Header, keys: Keyring) -> bytes:
    try:
        return AESGCM(keys.key(header.kid)).decrypt(
            header.wrap_nonce, header.wrapped_key, _wrap_aad(header.kid, header.version)
        )
    except InvalidTag:
        raise TamperedError(
            f"the data key does not open with master key {header.kid!r} "
            "(wrong key material for that id, or a modified header)"
        ) from None


def _wrap(data_key: bytes, keys: Keyring, version: int = VERSION) -> tuple[str, bytes, bytes]:
    kid, master = keys.current
    nonce = os.urandom(_WRAP_NONCE)
    return kid, nonce, AESGCM(master).encrypt(nonce, data_key, _wrap_aad(kid, version))


# --- sealing -------------------------------------------------------------------------------------
@contextlib.contextmanager
def call_lock(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the call directory's lock (``flock`` on the directory: the ARI app and the worker share the
    volume, not memory) while sealing or rewriting its files; yields False when ``wait`` is off and
    another process holds it."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _write_atomically(target: Path, chunks: Iterator[bytes]) -> None:
    """Write to a 0600 temp file beside ``target``, fsync, rename over it, fsync the directory.

    The temp name is unique: two writers of one file (which the call lock should prevent) each rename a
    whole file of their own, never interleave bytes in a shared one.
    """
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
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


def _sealed_chunks(source: BinaryIO, length: int, keys: Keyring, chunk_size: int, bound: bytes) -> Iterator[bytes]:
    data_key = AESGCM.generate_key(bit_length=256)
    kid, wrap_nonce, wrapped = _wrap(data_key, keys)
    aead = AESGCM(data_key)
    header = Header(kid, wrap_nonce, wrapped, chunk_size, length, os.urandom(8), VERSION)
    header = dataclasses.replace(
        header, binding=aead.encrypt(header.chunk_nonce(_BINDING_INDEX), bound, header.binding_aad)
    )
    yield header.pack()
    for index in range(header.chunks):
        final = index == header.chunks - 1
        want = length - index * chunk_size if final else chunk_size
        plain = source.read(want)
        if len(plain) != want:
            raise OSError(f"{getattr(source, 'name', 'source')} changed size while being sealed")
        yield aead.encrypt(header.chunk_nonce(index), plain, header.chunk_aad(index, final, bound))
    if source.read(1):
        raise OSError(f"{getattr(source, 'name', 'source')} grew while being sealed")


def is_clear(path: Path) -> bool:
    """A call file not (yet) sealed: not ``.enc``, not a hidden temp file."""
    return path.is_file() and not path.name.endswith(SUFFIX) and not path.name.startswith(".")


def seal_file(path: Path, keys: Keyring, chunk_size: int = CHUNK_SIZE) -> Path:
    """Seal ``path`` to ``path.enc`` (0600, atomically, bound to its call and name) and remove the clear
    file; returns the new path.

    The clear file is removed only if it did not change while it was sealed (a writer such as MixMonitor
    still at work): then the sealed copy is dropped and OSError raised, and the audio stays in clear.
    """
    target = path.with_name(path.name + SUFFIX)
    with path.open("rb") as source:
        before = os.fstat(source.fileno())
        _write_atomically(target, _sealed_chunks(source, before.st_size, keys, chunk_size, binding_of(path)))
    after = os.stat(path)
    if (after.st_ino, after.st_size, after.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
        target.unlink(missing_ok=True)
        raise OSError(f"{path} changed while it was sealed: left in clear")
    path.unlink(missing_ok=True)
    return target


def seal_directory(directory: Path, keys: Keyring) -> list[Path]:
    """Seal every clear file of one call's directory (idempotent: ``.enc`` and temp files are left alone).

    Every file is tried; any that cannot be sealed stays in clear and :class:`NotSealedError` lists them
    after the others are sealed.
    """
    sealed: list[Path] = []
    failed: dict[Path, BaseException] = {}
    with call_lock(directory):
        for path in sorted(directory.iterdir()):
            if is_clear(path):
                try:
                    sealed.append(seal_file(path, keys))
                except (OSError, SealError) as exc:
                    failed[path] = exc
        directory.chmod(0o700)
    if failed:
        raise NotSealedError(directory, failed)
    return sealed


# --- reading -------------------------------------------------------------------------------------
class SealedReader(io.RawIOBase):
    """A seekable, decrypting view of one sealed file; holds one decrypted chunk at a time."""

    def __init__(self, path: Path, keys: Keyring | None, name: str | None = None) -> None:
        super().__init__()
        self.name = name or str(path)
        self._file = path.open("rb")
        self._bound = binding_of(path)
        try:
            self.header = read_header(self._file)
            if keys is None:
                raise UnknownKeyError(f"{path} is sealed but {ENV_VAR} is not set")
            self._aead = AESGCM(_unwrap(self.header, keys))
            if self.header.version >= 2:
                self._check_place()
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

    def _check_place(self) -> None:
        """Say where the file was sealed for, when that is not where it lies (the chunks would fail anyway)."""
        try:
            sealed_for = self._aead.decrypt(
                self.header.chunk_nonce(_BINDING_INDEX), self.header.binding, self.header.binding_aad
            )
        except InvalidTag:
            raise TamperedError(
                f"{self.name}: the binding in its header failed authentication (a modified header)"
            ) from None
        if sealed_for != self._bound:
            raise MisplacedError(
                f"{self.name} was sealed as {describe_binding(sealed_for)} but lies at "
                f"{describe_binding(self._bound)}: it was moved or swapped, and opens only where it "
                "was sealed (move it back)"
            )

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
            plain = self._aead.decrypt(header.chunk_nonce(index), sealed, header.chunk_aad(index, final, self._bound))
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
    with call_lock(directory):
        if keys is None:
            _write_atomically(clear, iter([data]))
            sealed.unlink(missing_ok=True)
            return clear
        _write_atomically(sealed, _sealed_chunks(io.BytesIO(data), len(data), keys, CHUNK_SIZE, binding_of(clear)))
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
        kid, wrap_nonce, wrapped = _wrap(data_key, keys, header.version)
        new = dataclasses.replace(header, kid=kid, wrap_nonce=wrap_nonce, wrapped_key=wrapped)

        def pieces() -> Iterator[bytes]:
            yield new.pack()
            while block := handle.read(1024 * 1024):  # ciphertext copied as is
                yield block

        _write_atomically(path, pieces())
    return True


def _each_sealed(root: Path, keys: Keyring, change: Callable[[Path, Keyring], bool]) -> tuple[int, int]:
    """``change`` every ``*.enc`` under ``root``; returns (changed, left as they were)."""
    results = [change(path, keys) for path in sorted(Path(root).rglob("*" + SUFFIX))]
    return sum(results), len(results) - sum(results)


def rewrap_tree(root: Path, keys: Keyring) -> tuple[int, int]:
    """Rewrap every ``*.enc`` under ``root``; returns (rewrapped, already current)."""
    return _each_sealed(root, keys, rewrap_file)


def bind_file(path: Path, keys: Keyring) -> bool:
    """Reseal a version 1 file as version 2, bound to the call and name it lies at; False if already bound.

    The audio is decrypted and encrypted again (the binding is in every chunk's AAD), into a temp file
    renamed over the old one: an interrupted run leaves the old file, never half of a new one.
    """
    with path.open("rb") as handle:
        header = read_header(handle)
    if header.version >= 2:
        return False
    with io.BufferedReader(SealedReader(path, keys), buffer_size=header.chunk_size) as plain:
        _write_atomically(path, _sealed_chunks(plain, header.length, keys, header.chunk_size, binding_of(path)))
    return True


def bind_tree(root: Path, keys: Keyring) -> tuple[int, int]:
    """Bind every version 1 ``*.enc`` under ``root``; returns (bound now, already bound)."""
    return _each_sealed(root, keys, bind_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aipbx.sealing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rewrap = sub.add_parser("rewrap", help=f"rewrap data keys to the first key of {ENV_VAR}")
    rewrap.add_argument("--dir", required=True, type=Path, help="recordings directory (searched recursively)")
    bind = sub.add_parser("bind", help="reseal version 1 files so each opens only in its call folder, under its name")
    bind.add_argument("--dir", required=True, type=Path, help="recordings directory (searched recursively)")
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
        if args.command == "cat":
            with open_recording(args.directory, args.name, keys) as handle:
                while block := handle.read(CHUNK_SIZE):
                    sys.stdout.buffer.write(block)
        elif keys is None:
            parser.error(f"{ENV_VAR} is not set")
        elif args.command == "rewrap":
            done, current = rewrap_tree(args.dir, keys)
            print(f"rewrapped {done} file(s) to key {keys.current[0]!r}; {current} already used it")
        else:
            done, already = bind_tree(args.dir, keys)
            print(f"bound {done} file(s) to their call and name; {already} already were")
    except (SealError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
