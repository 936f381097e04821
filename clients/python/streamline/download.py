"""Reading what a link serves (a signed file link, a batch ZIP link) into a path or a file."""
import http.client
import os
from typing import BinaryIO, Union

from .errors import NETWORK_ERROR, StreamLineError, error_from_response
from .transport import USER_AGENT, OpenResponse, Transport

BLOCK = 1024 * 1024

Destination = Union[str, "os.PathLike[str]", BinaryIO]


def download(http_: Transport, url: str, destination: Destination) -> int:
    """Streams the link's bytes (memory stays flat); returns how many were written.

    Links carry their own signature, so no credentials are sent. Into a path, a download cut
    short removes the file rather than leave a truncated copy that looks whole.
    """
    with http_.open("GET", url, {"User-Agent": USER_AGENT}) as res:
        if res.status != 200:
            raise error_from_response(res.status, res.headers.get("Content-Type"), res.read())
        if not isinstance(destination, (str, os.PathLike)):
            return _copy(res, destination)
        try:
            with open(destination, "wb") as out:
                return _copy(res, out)
        except BaseException:
            try:
                os.unlink(destination)
            except OSError:
                pass
            raise


def _copy(res: OpenResponse, out: BinaryIO) -> int:
    expected = res.headers.get("Content-Length")
    written = 0
    while True:
        try:
            block = res.read(BLOCK)
        except (OSError, http.client.HTTPException) as error:
            raise StreamLineError(NETWORK_ERROR, 0, "the download broke off after %d bytes: %s" % (written, error)) from error
        if not block:
            break
        out.write(block)
        written += len(block)
    if expected is not None and expected.isdigit() and int(expected) != written:
        raise StreamLineError(NETWORK_ERROR, 0, "the download broke off after %d of %s bytes" % (written, expected))
    return written
