"""The one place requests are made: base URL, credentials, JSON in and out, problem+json -> error.

Built on http.client rather than urllib.request because an upload must be able to stop in the
middle of a PATCH body (an exception from a progress callback, a KeyboardInterrupt) and have its
connection closed at once: the server keeps the bytes it received and releases the upload for
the resume, instead of holding it until an abandoned socket is garbage-collected.
"""
import http.client
import json
import ssl
from typing import Any, Dict, Iterable, Mapping, NamedTuple, Optional, Union
from urllib.parse import quote, urlencode, urlsplit

from .errors import NETWORK_ERROR, UNEXPECTED_RESPONSE, StreamLineError, error_from_response

USER_AGENT = "stream-line-python/0.1"

Body = Union[None, bytes, Iterable[bytes]]
Query = Mapping[str, Union[str, int, None]]


class Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)


class Transport:
    """Requests to one server with one set of credentials (headers added to every request)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float = 60.0,
                 ssl_context: Optional[ssl.SSLContext] = None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http:// or https:// URL, got %r" % base_url)
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.ssl_context = ssl_context

    def url(self, path: str, query: Optional[Query] = None) -> str:
        """An absolute URL for a path of the API (the base URL may itself have a path)."""
        url = self.base_url + path
        pairs = [(name, str(value)) for name, value in (query or {}).items() if value is not None]
        return url + ("?" + urlencode(pairs) if pairs else "")

    def request(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None,
                body: Body = None, authenticated: bool = True) -> Response:
        """One request; the whole answer is read. Only a failure to reach the server raises."""
        all_headers = {"User-Agent": USER_AGENT}
        if authenticated:
            all_headers.update(self.headers)
        all_headers.update(headers or {})
        with self.open(method, url, all_headers, body) as res:
            try:
                data = res.read()
            except (OSError, http.client.HTTPException) as error:
                raise network_error(method, url, error) from error
            return Response(res.status, res.headers, data)

    def open(self, method: str, url: str, headers: Mapping[str, str], body: Body = None) -> "OpenResponse":
        """A request whose answer is read by the caller (downloads); close it when done."""
        parts = urlsplit(url)
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=self.timeout,
                                               context=self.ssl_context)  # type: http.client.HTTPConnection
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        else:
            raise StreamLineError(UNEXPECTED_RESPONSE, 0, "not an http(s) URL: %s" % url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        try:
            try:
                conn.request(method, target, body=body, headers=dict(headers))
            except (BrokenPipeError, ConnectionResetError) as error:
                # The server may answer before reading the whole body (a refusal, a PATCH ended
                # short); that answer is more useful than the broken pipe it causes.
                try:
                    return OpenResponse(conn, conn.getresponse())
                except Exception:
                    raise network_error(method, url, error) from error
            return OpenResponse(conn, conn.getresponse())
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise network_error(method, url, error) from error
        except BaseException:
            # An exception from the body's iterator (a callback) ends the request here and now.
            conn.close()
            raise

    def json(self, method: str, path: str, query: Optional[Query] = None, body: Any = None) -> Any:
        """A JSON answer, or None for 204; any other answer raises StreamLineError."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        url = self.url(path, query)
        res = self.request(method, url, headers, data)
        if not 200 <= res.status < 300:
            raise error_from_response(res.status, res.header("Content-Type"), res.body)
        if res.status == 204 or not res.body:
            return None
        try:
            return json.loads(res.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise StreamLineError(UNEXPECTED_RESPONSE, res.status,
                                  "expected JSON from %s %s" % (method, urlsplit(url).path)) from None


class OpenResponse:
    """An answer still being read, with the connection it arrived on (closed with it)."""

    def __init__(self, conn: http.client.HTTPConnection, res: http.client.HTTPResponse):
        self.conn = conn
        self.res = res
        self.status = res.status
        self.headers = res.headers

    def read(self, amount: Optional[int] = None) -> bytes:
        return self.res.read(amount)

    def close(self) -> None:
        self.res.close()
        self.conn.close()

    def __enter__(self) -> "OpenResponse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def network_error(method: str, url: str, error: BaseException) -> StreamLineError:
    parts = urlsplit(url)
    return StreamLineError(NETWORK_ERROR, 0, "%s %s://%s%s: %s" % (method, parts.scheme, parts.netloc, parts.path, error))


def key_path(key: str) -> str:
    """A file key in a path: slashes stay, everything else is percent-encoded (keys contain slashes)."""
    return "/".join(quote(part, safe="") for part in key.split("/"))


def auth_headers(token: Optional[str] = None, service_token: Optional[str] = None) -> Dict[str, str]:
    if service_token is not None:
        return {"X-Service-Token": service_token}
    return {"Authorization": "Bearer " + token} if token else {}
