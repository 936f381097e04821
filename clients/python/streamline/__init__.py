"""Python client for Stream-Line Upload: resumable tus uploads with SHA-256, the files API, and
service sessions. Standard library only, Python 3.9+.

    from streamline import ServiceClient, UserSession, FileUrlStore, StreamLineError
"""
from .errors import NETWORK_ERROR, UNEXPECTED_RESPONSE, StreamLineError
from .messages import error_message
from .service import ServiceClient
from .session import UserSession
from .source import SourceError
from .tus import DEFAULT_CHUNK_SIZE, UploadStatus
from .url_store import FileUrlStore, MemoryUrlStore, UrlStore

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FileUrlStore",
    "MemoryUrlStore",
    "NETWORK_ERROR",
    "ServiceClient",
    "SourceError",
    "StreamLineError",
    "UNEXPECTED_RESPONSE",
    "UploadStatus",
    "UrlStore",
    "UserSession",
    "error_message",
]

__version__ = "0.1.0"
