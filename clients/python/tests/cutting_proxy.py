"""An HTTP proxy in front of the server that can cut a PATCH part-way and close the connection
with no answer, as a dropped network would. It rewrites the Location of created uploads to
itself, so every request of those uploads goes through it."""
import http.client
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _unread_by_server(server_port: int, client_port: int) -> Optional[int]:
    """Bytes the kernel holds for the server's end of the connection from client_port, not yet read
    by the server (Linux's /proc/net/tcp); None when the connection is not listed."""
    suffix_local, suffix_remote = ":%04X" % server_port, ":%04X" % client_port
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if fields[1].endswith(suffix_local) and fields[2].endswith(suffix_remote):
                return int(fields[4].split(":")[1], 16)
    return None


def _wait_until_read(upstream: http.client.HTTPConnection, server_port: int, timeout: float = 60.0) -> None:
    """Waits until the server has read what was sent on `upstream`. Cut before that, the request
    could reach the server after the client's next one, which no server can put in order."""
    if upstream.sock is None or not os.path.exists("/proc/net/tcp"):
        return
    client_port = upstream.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while (_unread_by_server(server_port, client_port) or 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)


class CuttingProxy:
    def __init__(self, upstream_url: str):
        upstream = urlsplit(upstream_url)
        self.upstream_origin = "%s://%s" % (upstream.scheme, upstream.netloc)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        # For each PATCH in turn: None to pass it whole, or how many body bytes to let through.
        self.patch_plan = []  # type: List[Optional[int]]
        self.requests = []  # type: List[str]
        self.cuts = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_cut(self, method: str) -> Optional[int]:
        with self.lock:
            self.requests.append(method)
            return self.patch_plan.pop(0) if method == "PATCH" and self.patch_plan else None

    def _handler(self) -> type:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                self.close_connection = True
                length = int(self.headers.get("Content-Length") or 0)
                cut = proxy._next_cut(self.command)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(length)
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    if cut is not None and cut < length:
                        # The server gets the first bytes of the body, then a closed connection.
                        upstream.putrequest(self.command, self.path, skip_accept_encoding=True)
                        for name, value in headers.items():
                            upstream.putheader(name, value)
                        upstream.endheaders(self.rfile.read(cut))
                        _wait_until_read(upstream, proxy.upstream[1])
                        with proxy.lock:
                            proxy.cuts += 1
                        # RST rather than FIN: the client learns at once that no answer will come.
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    upstream.request(self.command, self.path, body=self.rfile.read(length) if length else None, headers=headers)
                    res = upstream.getresponse()
                    body = res.read()
                    self.send_response_only(res.status, res.reason)
                    for name, value in res.getheaders():
                        if name.lower() in HOP_BY_HOP:
                            continue
                        if name.lower() == "location":
                            value = value.replace(proxy.upstream_origin, proxy.url, 1)
                        self.send_header(name, value)
                    self.send_header("Content-Length", res.getheader("Content-Length") or str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                finally:
                    upstream.close()

            do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_OPTIONS = forward

        return Handler
