"""Problem codes in words, for people (the CLI prints these); the same words as the TypeScript SDK."""
from .errors import StreamLineError

MESSAGES = {
    "quota_exceeded": "Not enough storage left in your quota for this file. Delete some files and try again.",
    "upload_too_large": "This file is larger than the server accepts for a single upload.",
    "checksum_mismatch": "The file arrived damaged (its SHA-256 did not match) and was discarded. Upload it again.",
    "token_expired": "Your session token has expired. Sign in again with a new token.",
    "invalid_token": "The token was not accepted. Check that it was copied whole, or ask for a new one.",
    "unauthenticated": "You are not signed in.",
    "forbidden": "You are not allowed to do that.",
    "not_found": "Not found: it may have been deleted, or it belongs to someone else.",
    "link_expired": "This link has expired. Make a new one.",
    "invalid_signature": "This link is not valid: it was altered or made with another key.",
    "upload_locked": "The upload is busy in another request. Try again in a moment.",
    "insufficient_storage": "The server is out of disk space. Try again later; the upload will resume.",
    "unavailable": "The server is temporarily unavailable. Try again shortly.",
    "network_error": "The server could not be reached. Check the address and your connection.",
    "internal": "The server failed unexpectedly. Try again; if it keeps failing, tell the administrator.",
}

NO_SUCH_ROUTE_WORDS = "The server has no such route: check its address (and the path after the host name, if any)."


def is_no_such_route(error: StreamLineError) -> bool:
    """The server's 404 for the route itself, not for a file: the address, or the path in it, is wrong."""
    return error.code == "not_found" and error.detail == "no such route"


def error_message(error: BaseException) -> str:
    """One sentence for a person. Codes without words of their own are best explained by the
    server's detail, which names the field."""
    if not isinstance(error, StreamLineError):
        return str(error)
    if is_no_such_route(error):
        return NO_SUCH_ROUTE_WORDS
    if error.code in MESSAGES:
        return MESSAGES[error.code]
    if error.detail:
        return "%s%s (%s)." % (error.detail[:1].upper(), error.detail[1:], error.code)
    return "Request refused (%s, HTTP %d)." % (error.code, error.status)
