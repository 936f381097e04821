"""A process that starts an upload and stalls in the middle of its second PATCH, so that the test
can kill it there: ``python -m tests.stall_upload FILE CHUNK_SIZE MARKER`` (server, token and URL
store from the same environment as the CLI)."""
import os
import sys
import time

from streamline import FileUrlStore, UserSession


def main() -> None:
    path, chunk_size, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    session = UserSession(os.environ["STREAM_LINE_URL"], os.environ["STREAM_LINE_TOKEN"],
                          url_store=FileUrlStore(os.environ["STREAM_LINE_URL_STORE"]))

    def stall(sent: int, total: int) -> None:
        if sent >= chunk_size + chunk_size // 2:
            with open(marker, "w"):
                pass
            time.sleep(3600)  # killed here, mid-PATCH

    session.upload(path, chunk_size=chunk_size, on_progress=stall)
    sys.exit("the upload finished instead of stalling")


if __name__ == "__main__":
    main()
