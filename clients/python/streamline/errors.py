"""One exception for every refusal, typed by the server's stable problem ``code``.

The server answers errors as RFC 9457 problem+json ``{type, title, status, code, detail}``; the
``code`` is stable (``quota_exceeded``, ``checksum_mismatch``, ``not_found``, ...). Two codes are the
client's own: ``network_error`` (no answer arrived, status 0) and ``unexpected_response`` (an answer
that is neither the expected JSON nor problem+json).
"""
import json
from typing import Optional

NETWORK_ERROR = "network_error"
UNEXPECTED_RESPONSE = "unexpected_response"


class StreamLineError(Exception):
    """A refusal from the server, or a failure to reach it.

    ``code`` is the problem code, ``status`` the HTTP status (0 when no answer arrived) and
    ``detail`` the server's explanation, when it gave one.
    """

    def __init__(self, code: str, status: int, detail: Optional[str] = None):
        super().__init__("%s: %s" % (code, detail) if detail else code)
        self.code = code
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return "StreamLineError(code=%r, status=%r, detail=%r)" % (self.code, self.status, self.detail)


def error_from_response(status: int, content_type: Optional[str], body: bytes) -> StreamLineError:
    """The error a non-2xx answer stands for: its problem code when it is problem+json."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "application/problem+json":
        try:
            problem = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            problem = None
        if isinstance(problem, dict) and isinstance(problem.get("code"), str):
            detail = problem.get("detail")
            if not isinstance(detail, str):
                detail = problem.get("title") if isinstance(problem.get("title"), str) else None
            return StreamLineError(problem["code"], status, detail)
    text = body[:200].decode("utf-8", "replace")
    return StreamLineError(UNEXPECTED_RESPONSE, status, "HTTP %d: %s" % (status, text))
