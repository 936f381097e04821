"""What an upload reads: a path, bytes, or a binary file object, hashed once before the upload.

The whole file's SHA-256 must be declared when the upload is created (``sha256`` metadata), so
the bytes are read twice: once streaming through the hash, once to send. A path is reopened for
each PATCH at its offset; a seekable file object is seeked; anything that can be read only once
is spooled to a temporary file while it is hashed.
"""
import hashlib
import os
import tempfile
from typing import BinaryIO, Callable, Iterator, Optional, Union

HASH_BLOCK = 1024 * 1024

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


class SourceError(RuntimeError):
    """The source could not be read, or ended before the size it had when it was hashed.

    Not an OSError on purpose: a local failure must not pass for a network one and be retried.
    """


class PreparedSource:
    def __init__(self, size: int, sha256: str, filename: str,
                 open_at: Callable[[int], BinaryIO], close_after: bool, dispose: Callable[[], None] = lambda: None):
        self.size = size
        self.sha256 = sha256
        self.filename = filename
        self._open_at = open_at
        self._close_after = close_after
        self.dispose = dispose

    def blocks(self, offset: int, length: int, block_size: int, on_block: Callable[[int], None]) -> Iterator[bytes]:
        """``length`` bytes from ``offset``, in blocks; ``on_block(n)`` runs once each block is sent."""
        try:
            stream = self._open_at(offset)
        except OSError as error:
            raise SourceError("reopening the source failed: %s" % error) from error
        try:
            left = length
            while left > 0:
                try:
                    block = stream.read(min(block_size, left))
                except OSError as error:
                    raise SourceError("reading the source failed: %s" % error) from error
                if not block:
                    raise SourceError("the source ended %d bytes early: it changed since it was hashed" % left)
                yield block
                left -= len(block)
                on_block(len(block))
        finally:
            if self._close_after:
                stream.close()


def prepare_source(source: Source, sha256: Optional[str] = None) -> PreparedSource:
    """Sizes and hashes the source (unless its ``sha256`` is given), streaming it once."""
    if sha256 is not None:
        # SPEC: `sha256` is the "lowercase hex of the whole file".
        sha256 = sha256.lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("sha256 must be 64 hex digits, got %r" % sha256)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        digest = sha256 or hashlib.sha256(data).hexdigest()
        return PreparedSource(len(data), digest, "upload.bin", lambda offset: _BytesReader(data, offset), True)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if sha256 is None:
            with open(path, "rb") as stream:
                sha256, size = _hash_stream(stream)  # the size of what was hashed
        else:
            size = os.stat(path).st_size
        return PreparedSource(size, sha256, os.path.basename(path), lambda offset: _open_path(path, offset), True)
    if _seekable(source):
        start = source.tell()
        if sha256 is None:
            digest, size = _hash_stream(source)
        else:
            digest, size = sha256, source.seek(0, os.SEEK_END) - start

        def seek_to(offset: int) -> BinaryIO:
            source.seek(start + offset)
            return source
        return PreparedSource(size, digest, _name_of(source), seek_to, False)
    return _spool(source, sha256)


def _spool(source: BinaryIO, sha256: Optional[str]) -> PreparedSource:
    spool = tempfile.TemporaryFile()
    try:
        hasher = hashlib.sha256()
        size = 0
        while True:
            block = source.read(HASH_BLOCK)
            if not block:
                break
            hasher.update(block)
            spool.write(block)
            size += len(block)
        spool.flush()
    except BaseException:
        spool.close()
        raise

    def seek_to(offset: int) -> BinaryIO:
        spool.seek(offset)
        return spool
    return PreparedSource(size, sha256 or hasher.hexdigest(), _name_of(source), seek_to, False, spool.close)


def _hash_stream(stream: BinaryIO) -> "tuple[str, int]":
    hasher = hashlib.sha256()
    size = 0
    while True:
        block = stream.read(HASH_BLOCK)
        if not block:
            return hasher.hexdigest(), size
        hasher.update(block)
        size += len(block)


def _open_path(path: str, offset: int) -> BinaryIO:
    stream = open(path, "rb")
    stream.seek(offset)
    return stream


def _seekable(source: BinaryIO) -> bool:
    try:
        return bool(source.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _name_of(stream: BinaryIO) -> str:
    name = getattr(stream, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else "upload.bin"


class _BytesReader:
    def __init__(self, data: bytes, offset: int):
        self._view = memoryview(data)
        self._pos = offset

    def read(self, size: int) -> bytes:
        block = bytes(self._view[self._pos:self._pos + size])
        self._pos += len(block)
        return block

    def close(self) -> None:
        self._view.release()

