"""A user's session from their JWT: everything a signed-in user may do with their own files."""
import os
import ssl
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Union

from .download import download
from .source import Source, prepare_source
from .transport import Transport, auth_headers, key_path
from .tus import DEFAULT_CHUNK_SIZE, DEFAULT_RETRY_DELAYS, ProgressCallback, UploadStatus, run_upload, upload_status
from .url_store import UrlStore

Record = Dict[str, Any]


class UserSession:
    """Acts as one user (``Authorization: Bearer <token>``).

    ``url_store`` keeps unfinished uploads' URLs so that an upload interrupted in this process or a
    previous one resumes from the server's offset (see ``FileUrlStore``); without one, resuming
    is the caller's business (``upload_url`` / ``on_upload_url``), as in the TypeScript SDK.
    """

    def __init__(self, base_url: str, token: str, *, url_store: Optional[UrlStore] = None,
                 timeout: float = 60.0, ssl_context: Optional[ssl.SSLContext] = None):
        self._http = Transport(base_url, auth_headers(token=token), timeout, ssl_context)
        self.token = token
        self.url_store = url_store

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def list_my_files(self, folder: Optional[str] = None, limit: Optional[int] = None,
                      cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page, newest first: ``{"files": [...], "next_cursor": str or None}`` (limit 1-1000, default 50)."""
        return self._http.json("GET", "/v1/files/all", {"folder": folder, "limit": limit, "cursor": cursor})

    def iter_my_files(self, folder: Optional[str] = None, page_size: int = 1000) -> Iterator[Record]:
        """Every file, newest first, following ``next_cursor`` page after page."""
        return iter_pages(lambda cursor: self.list_my_files(folder, page_size, cursor))

    def get_file_metadata(self, key: str) -> Record:
        return self._http.json("GET", "/v1/files/metadata/" + key_path(key))

    def upload(self, source: Source, *, folder: Optional[str] = None, filename: Optional[str] = None,
               filetype: Optional[str] = None, sha256: Optional[str] = None,
               chunk_size: int = DEFAULT_CHUNK_SIZE, on_progress: Optional[ProgressCallback] = None,
               upload_url: Optional[str] = None, on_upload_url: Optional[Callable[[str], None]] = None,
               url_store: Optional[UrlStore] = None,
               retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS) -> Record:
        """Uploads a path, bytes or a binary file object over tus; returns the recorded file.

        The SHA-256 of the whole source is computed first (streaming) and declared, unless given
        as ``sha256`` (lowercase hex). ``on_progress(sent, total)`` is called with the server's
        offset when sending starts or resumes, then as bytes are sent. An exception raised from a
        callback (or a KeyboardInterrupt) stops the upload at once; it resumes on the next call
        with the same file and store, or with ``upload_url``.
        """
        prepared = prepare_source(source, sha256)
        try:
            return run_upload(self._http, prepared, self.get_file_metadata, folder=folder, filename=filename,
                              filetype=filetype, chunk_size=chunk_size, on_progress=on_progress,
                              upload_url=upload_url, on_upload_url=on_upload_url,
                              url_store=url_store if url_store is not None else self.url_store,
                              retry_delays=retry_delays)
        finally:
            prepared.dispose()

    def upload_status(self, upload_url: str) -> Optional[UploadStatus]:
        """``(offset, length)`` of an unfinished upload; None once it is gone (finished or expired)."""
        return upload_status(self._http, upload_url)

    def signed_url(self, key: str, ttl: Optional[int] = None, disposition: Optional[str] = None) -> Dict[str, str]:
        """``{"url", "expires_at"}``: a link anyone may GET until it expires (ttl in seconds, 1 s - 7 days)."""
        return self._http.json("GET", "/v1/files/signed-url", {"key": key, "ttl": ttl, "disposition": disposition})

    def batch_download(self, keys: List[str], name: Optional[str] = None) -> Dict[str, str]:
        """``{"token", "url", "expires_at"}``: an expiring link to one ZIP of these files."""
        body = {"keys": list(keys)}  # type: Dict[str, Any]
        if name is not None:
            body["name"] = name
        return self._http.json("POST", "/v1/files/batch-download", body=body)

    def download(self, url: str, destination: Union[str, "os.PathLike[str]", BinaryIO]) -> int:
        """Streams a signed link or a batch ZIP link to a path or a file object; returns its size."""
        return download(self._http, url, destination)

    def usage(self) -> Dict[str, int]:
        """``{"used_bytes", "reserved_bytes", "quota_bytes"}``."""
        return self._http.json("GET", "/v1/usage")

    def delete_file(self, key: str) -> None:
        self._http.json("DELETE", "/v1/files/" + key_path(key))


def iter_pages(page: Callable[[Optional[str]], Dict[str, Any]]) -> Iterator[Record]:
    cursor = None  # type: Optional[str]
    while True:
        result = page(cursor)
        for record in result["files"]:
            yield record
        cursor = result.get("next_cursor")
        if not cursor:
            return
