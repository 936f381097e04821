"""A service's client from a service token: acts for any user (``X-Service-Token`` with
``user_id``), mints user tokens and opens user sessions."""
import json
import ssl
from typing import Any, Dict, Iterator, Optional

from .errors import error_from_response
from .session import Record, UserSession, iter_pages
from .transport import Transport, auth_headers, key_path
from .url_store import UrlStore


class ServiceClient:
    def __init__(self, base_url: str, service_token: str, *, timeout: float = 60.0,
                 ssl_context: Optional[ssl.SSLContext] = None):
        self._http = Transport(base_url, auth_headers(service_token=service_token), timeout, ssl_context)
        self._ssl_context = ssl_context

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def list_user_files(self, user_id: str, folder: Optional[str] = None, limit: Optional[int] = None,
                        cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page of a user's files, newest first: ``{"files": [...], "next_cursor": str or None}``."""
        return self._http.json("GET", "/v1/files/all",
                               {"folder": folder, "limit": limit, "cursor": cursor, "user_id": user_id})

    def iter_user_files(self, user_id: str, folder: Optional[str] = None, page_size: int = 1000) -> Iterator[Record]:
        """Every file of the user, newest first, following ``next_cursor`` page after page."""
        return iter_pages(lambda cursor: self.list_user_files(user_id, folder, page_size, cursor))

    def get_file_metadata(self, key: str) -> Record:
        return self._http.json("GET", "/v1/files/metadata/" + key_path(key))

    def delete_file(self, key: str) -> None:
        self._http.json("DELETE", "/v1/files/" + key_path(key))

    def user_usage(self, user_id: str) -> Dict[str, int]:
        return self._http.json("GET", "/v1/usage", {"user_id": user_id})

    def generate_user_token(self, user_id: str, expires_hours: Optional[int] = None) -> Dict[str, str]:
        """``{"token", "expires_at", "user_id"}``: a user JWT signed by the server (1-720 h, default 24)."""
        return self._http.json("POST", "/v1/files/generate-token", {"user_id": user_id, "expires_hours": expires_hours})

    def create_user_session(self, user_id: str, expires_hours: Optional[int] = None, *,
                            url_store: Optional[UrlStore] = None) -> UserSession:
        """Mints a token for the user and returns their session."""
        minted = self.generate_user_token(user_id, expires_hours)
        return UserSession(self.base_url, minted["token"], url_store=url_store,
                           timeout=self._http.timeout, ssl_context=self._ssl_context)

    def health_check(self) -> Dict[str, Any]:
        """The health report; a failing check is reported in it (``status: "fail"``, HTTP 503), not raised."""
        res = self._http.request("GET", self._http.url("/healthz"), {"Accept": "application/json"}, authenticated=False)
        is_json = (res.header("Content-Type") or "").startswith("application/json")
        if (200 <= res.status < 300 or res.status == 503) and is_json:
            return json.loads(res.body.decode("utf-8"))
        raise error_from_response(res.status, res.header("Content-Type"), res.body)

    def get_jwks(self) -> Dict[str, Any]:
        """The public keys that verify the server's user tokens."""
        return self._http.json("GET", "/.well-known/jwks.json")
