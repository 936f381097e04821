"""Where unfinished uploads' URLs are kept, so a later run resumes them instead of starting over.

Like tus-js-client's and tuspy's URL storage, entries are keyed by a fingerprint of the file. Here
the fingerprint is made of the server, the file's SHA-256 and size, and the metadata the upload
was created with (all fixed at creation): a file edited since is a different file and never
resumes into its old upload, wherever it lives on disk.
"""
import hashlib
import json
import os
import tempfile
import time
from typing import Dict, Mapping, Optional


class UrlStore:
    """The interface: get / set / remove an upload URL by fingerprint."""

    def get(self, fingerprint: str) -> Optional[str]:
        raise NotImplementedError

    def set(self, fingerprint: str, upload_url: str) -> None:
        raise NotImplementedError

    def remove(self, fingerprint: str) -> None:
        raise NotImplementedError


class MemoryUrlStore(UrlStore):
    """Resumes within one process only."""

    def __init__(self) -> None:
        self.entries = {}  # type: Dict[str, str]

    def get(self, fingerprint: str) -> Optional[str]:
        return self.entries.get(fingerprint)

    def set(self, fingerprint: str, upload_url: str) -> None:
        self.entries[fingerprint] = upload_url

    def remove(self, fingerprint: str) -> None:
        self.entries.pop(fingerprint, None)


class FileUrlStore(UrlStore):
    """A small JSON file ``{fingerprint: {"upload_url", "saved_at"}}``, kept across processes.

    Each change re-reads the file and replaces it whole through a temporary file and a rename, so
    a process killed mid-write never leaves it half-written. Upload URLs are capabilities only
    together with the token, but the file is kept private (0600) all the same.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(os.path.expanduser(path))

    def get(self, fingerprint: str) -> Optional[str]:
        entry = self._read().get(fingerprint)
        url = entry.get("upload_url") if isinstance(entry, dict) else None
        return url if isinstance(url, str) else None

    def set(self, fingerprint: str, upload_url: str) -> None:
        entries = self._read()
        entries[fingerprint] = {"upload_url": upload_url, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._write(entries)

    def remove(self, fingerprint: str) -> None:
        entries = self._read()
        if entries.pop(fingerprint, None) is not None:
            self._write(entries)

    def _read(self) -> Dict[str, object]:
        try:
            with open(self.path, "r", encoding="utf-8") as stream:
                parsed = json.load(stream)
        except (OSError, ValueError):
            # Missing or unreadable: start afresh (the worst case is an upload that starts from 0).
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _write(self, entries: Mapping[str, object]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".url-store-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(entries, stream, indent=2, sort_keys=True)
                stream.write("\n")
            os.replace(temp, self.path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise


def fingerprint(server: str, size: int, metadata: Mapping[str, str]) -> str:
    """The store's key for an upload of ``size`` bytes created with this metadata (sha256 included)."""
    identity = json.dumps([server, size, sorted(metadata.items())], separators=(",", ":"))
    return "sha256-" + hashlib.sha256(identity.encode("utf-8")).hexdigest()
