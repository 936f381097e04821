"""One resumable upload over tus 1.0 (creation, HEAD, chunked PATCHes), resolving with the file
record the final PATCH answers (SPEC "Resumable uploads").

The whole file's SHA-256 is declared as ``sha256`` metadata, so the server refuses damaged bytes
(460 ``checksum_mismatch``) instead of recording them. Each upload's URL goes to a URL store as
soon as the server creates it, and leaves it when the file is recorded: a later run with the same
file and metadata finds it there, asks the server for its offset and sends only the rest.
"""
import base64
import json
import time
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence
from urllib.parse import urljoin

from .errors import NETWORK_ERROR, UNEXPECTED_RESPONSE, StreamLineError, error_from_response
from .source import PreparedSource
from .transport import Response, Transport
from .url_store import UrlStore, fingerprint

TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
# Seconds to wait before each retry of a failed request (tus-js-client's default retryDelays, as the TypeScript SDK).
DEFAULT_RETRY_DELAYS = (0.0, 1.0, 3.0, 5.0)
# Bytes handed to the socket at a time: the granularity of progress reports.
SEND_BLOCK = 256 * 1024

ProgressCallback = Callable[[int, int], None]
FetchRecord = Callable[[str], Dict[str, Any]]


class UploadStatus(NamedTuple):
    offset: int
    length: Optional[int]
    #: The finished file's key once every byte is stored and recorded (the upload URL stays
    #: addressable while the file exists, so a client whose final answer was lost learns it is done).
    file_key: Optional[str] = None


def upload_status(transport: Transport, upload_url: str) -> Optional[UploadStatus]:
    """Where an upload stands; None once it is gone (terminated, expired, or its file deleted)."""
    res = _head(transport, upload_url)
    if res.status in (404, 410):
        return None
    offset = res.header("Upload-Offset")
    if not 200 <= res.status < 300 or offset is None:
        raise error_from_response(res.status, res.header("Content-Type"), res.body)
    length = res.header("Upload-Length")
    return UploadStatus(int(offset), int(length) if length is not None else None, res.header("X-File-Key"))


def run_upload(transport: Transport, prepared: PreparedSource, fetch_record: FetchRecord, *,
               folder: Optional[str] = None, filename: Optional[str] = None, filetype: Optional[str] = None,
               chunk_size: int = DEFAULT_CHUNK_SIZE, on_progress: Optional[ProgressCallback] = None,
               upload_url: Optional[str] = None, on_upload_url: Optional[Callable[[str], None]] = None,
               url_store: Optional[UrlStore] = None,
               retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS) -> Dict[str, Any]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1 byte")
    size = prepared.size
    metadata = {"filename": filename or prepared.filename, "sha256": prepared.sha256}
    if filetype:
        metadata["filetype"] = filetype
    if folder:
        metadata["folder"] = folder
    store_key = fingerprint(transport.base_url, size, metadata)
    progress = on_progress or (lambda sent, total: None)

    def forget() -> None:
        if url_store is not None:
            url_store.remove(store_key)

    url = upload_url or (url_store.get(store_key) if url_store is not None else None)
    created_here = False
    offset = None  # type: Optional[int]  # None: ask the server (HEAD) before sending
    attempt = 0
    while True:
        try:
            if url is None:
                res = _create(transport, size, metadata)
                url = res.location
                created_here = True
                if url_store is not None:
                    url_store.set(store_key, url)
                if on_upload_url is not None:
                    on_upload_url(url)
                record = _record_of(res.response, fetch_record)
                if record is not None:  # an empty file is finished by its creation
                    forget()
                    return record
                offset = 0
                progress(0, size)
            elif offset is None:
                res = _head(transport, url)
                if res.status in (404, 410):
                    if created_here:
                        raise StreamLineError("not_found", res.status, "the upload is gone from the server (expired, "
                                              "or finished by a request whose answer was lost): %s" % url)
                    # A stored URL that outlived its upload: start again.
                    forget()
                    url = None
                    continue
                if not 200 <= res.status < 300:
                    raise error_from_response(res.status, res.header("Content-Type"), res.body)
                record = _record_of(res, fetch_record)
                if record is not None:  # every byte was there: the HEAD finished it
                    forget()
                    return record
                offset = _int_header(res, "Upload-Offset")
                if _int_header(res, "Upload-Length") != size or offset >= size:
                    if created_here:
                        raise StreamLineError(UNEXPECTED_RESPONSE, res.status, "HEAD %s answered offset %d of %s" % (
                            url, offset, res.header("Upload-Length")))
                    # Someone else's idea of this upload (an upload_url for other bytes): start again.
                    forget()
                    url, offset = None, None
                    continue
                progress(offset, size)
            else:
                res = _patch(transport, url, prepared, offset, min(chunk_size, size - offset), progress)
                if not 200 <= res.status < 300:
                    raise error_from_response(res.status, res.header("Content-Type"), res.body)
                record = _record_of(res, fetch_record)
                if record is not None:
                    forget()
                    return record
                new_offset = _int_header(res, "Upload-Offset")
                if new_offset > offset:
                    attempt = 0
                elif attempt < len(retry_delays):
                    # The server kept nothing of this PATCH (it ended it early): wait, as after a failure.
                    time.sleep(retry_delays[attempt])
                    attempt += 1
                else:
                    raise StreamLineError(UNEXPECTED_RESPONSE, res.status, "PATCHes at offset %d store nothing" % offset)
                # All sent but not recorded (the answer had no record): a HEAD finishes it.
                offset = new_offset if new_offset < size else None
        except StreamLineError as error:
            if error.code == "checksum_mismatch":
                forget()  # SPEC: "the data is discarded and the reservation released"
            if not _retryable(error) or attempt >= len(retry_delays):
                raise
            time.sleep(retry_delays[attempt])
            attempt += 1
            offset = None


class _Created(NamedTuple):
    location: str
    response: Response


def _create(transport: Transport, size: int, metadata: Mapping[str, str]) -> _Created:
    headers = dict(TUS_HEADERS)
    headers["Upload-Length"] = str(size)
    headers["Upload-Metadata"] = encode_metadata(metadata)
    endpoint = transport.url("/v1/uploads")
    res = transport.request("POST", endpoint, headers)
    location = res.header("Location")
    if res.status != 201 or not location:
        if 200 <= res.status < 300:
            raise StreamLineError(UNEXPECTED_RESPONSE, res.status, "the creation answered no Location")
        raise error_from_response(res.status, res.header("Content-Type"), res.body)
    # The Location may be relative to the endpoint.
    return _Created(urljoin(endpoint, location), res)


def _head(transport: Transport, url: str) -> Response:
    return transport.request("HEAD", url, TUS_HEADERS)


def _patch(transport: Transport, url: str, prepared: PreparedSource, offset: int, length: int,
           progress: ProgressCallback) -> Response:
    headers = dict(TUS_HEADERS)
    headers["Upload-Offset"] = str(offset)
    headers["Content-Type"] = "application/offset+octet-stream"
    headers["Content-Length"] = str(length)
    sent = [offset]

    def on_block(count: int) -> None:
        sent[0] += count
        progress(sent[0], prepared.size)

    blocks = prepared.blocks(offset, length, SEND_BLOCK, on_block)
    try:
        return transport.request("PATCH", url, headers, blocks)
    finally:
        blocks.close()


def _record_of(res: Response, fetch_record: FetchRecord) -> Optional[Dict[str, Any]]:
    """The final PATCH answers the record as JSON; a HEAD that finished an upload only its key."""
    if res.body:
        try:
            record = json.loads(res.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("key"), str):
            return record
    key = res.header("X-File-Key")
    return fetch_record(key) if key else None


def _int_header(res: Response, name: str) -> int:
    value = res.header(name)
    if value is None or not value.isdigit():
        raise StreamLineError(UNEXPECTED_RESPONSE, res.status, "expected a %s header, got %r" % (name, value))
    return int(value)


def _retryable(error: StreamLineError) -> bool:
    """As tus-js-client: no answer, a server failure (not 501), a lock held or an offset moved on."""
    if error.code == NETWORK_ERROR:
        return True
    return error.status in (409, 423) or (error.status >= 500 and error.status != 501)


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """tus 1.0 Upload-Metadata: comma-separated ``key base64(value)`` pairs."""
    return ",".join("%s %s" % (name, base64.b64encode(value.encode("utf-8")).decode("ascii"))
                    for name, value in metadata.items())
