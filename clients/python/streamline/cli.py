"""python3 -m streamline: the command line. Parses the command, builds the client it needs, runs
it, and turns failures into one line of words and an exit code: 0 done, 1 refused or failed,
2 wrong usage, 130 interrupted (run the same upload again to resume it)."""
import argparse
import json
import os
import sys
from typing import Callable, List, Mapping, Optional

from .messages import error_message
from .service import ServiceClient
from .session import UserSession
from .url_store import FileUrlStore

DEFAULT_URL = "http://127.0.0.1:8080"

EPILOG = """environment (flags win):
  STREAM_LINE_URL            server, default %s
  STREAM_LINE_TOKEN          your user token
  STREAM_LINE_SERVICE_TOKEN  the service token (for `token`)
  STREAM_LINE_URL_STORE      where unfinished uploads' URLs are kept, default
                             $XDG_CONFIG_HOME/stream-line/python-upload-urls.json""" % DEFAULT_URL


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    # Run as `python3 -m streamline` argv[0] is this package's __main__.py; installed, the script's name.
    name = os.path.basename(sys.argv[0])
    prog = "python3 -m streamline" if name == "__main__.py" else name
    p = argparse.ArgumentParser(prog=prog, description="Stream-Line Upload from the command line.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="the server's URL")
    p.add_argument("--token", help="your user token (JWT)")
    p.add_argument("--service-token", help="the service token")
    commands = p.add_subparsers(dest="command", metavar="<command>")
    upload = commands.add_parser("upload", help="upload files; run again after an interruption to resume")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--folder")
    upload.add_argument("--chunk-size", type=int, metavar="BYTES", help="bytes per PATCH (default 16 MiB)")
    listing = commands.add_parser("ls", help="list your files, newest first")
    listing.add_argument("--folder")
    listing.add_argument("--json", action="store_true")
    remove = commands.add_parser("rm", help="delete files")
    remove.add_argument("keys", nargs="+", metavar="KEY")
    link = commands.add_parser("link", help="print a signed download link")
    link.add_argument("key", metavar="KEY")
    link.add_argument("--ttl", type=int, metavar="SECONDS")
    link.add_argument("--inline", action="store_true")
    archive = commands.add_parser("zip", help="download several files as one ZIP")
    archive.add_argument("keys", nargs="+", metavar="KEY")
    archive.add_argument("-o", "--output", required=True)
    archive.add_argument("--name")
    usage = commands.add_parser("usage", help="storage used against your quota")
    usage.add_argument("--json", action="store_true")
    token = commands.add_parser("token", help="mint a user token (needs the service token)")
    token.add_argument("user")
    token.add_argument("--hours", type=int)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help(sys.stderr)
        return 2
    env = os.environ
    url = args.url or env.get("STREAM_LINE_URL") or DEFAULT_URL
    try:
        if args.command == "token":
            service_token = args.service_token or env.get("STREAM_LINE_SERVICE_TOKEN")
            if not service_token:
                raise UsageError("no service token: pass --service-token or set STREAM_LINE_SERVICE_TOKEN")
            minted = ServiceClient(url, service_token).generate_user_token(args.user, args.hours)
            print(minted["token"])
            print("token for %s, expires %s" % (minted["user_id"], minted["expires_at"]), file=sys.stderr)
            return 0
        user_token = args.token or env.get("STREAM_LINE_TOKEN")
        if not user_token:
            raise UsageError("no user token: pass --token or set STREAM_LINE_TOKEN "
                             "(a service mints one with `python3 -m streamline token <user>`)")
        session = UserSession(url, user_token, url_store=FileUrlStore(store_path(env)))
        return run(session, args)
    except UsageError as error:
        print("python3 -m streamline: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # every failure becomes one line of words
        print(error_message(error), file=sys.stderr)
        return 1


def run(session: UserSession, args: argparse.Namespace) -> int:
    if args.command == "upload":
        return upload_files(session, args.files, args.folder, args.chunk_size)
    if args.command == "ls":
        files = list(session.iter_my_files(args.folder))
        if args.json:
            print(json.dumps(files, indent=2))
        for f in [] if args.json else files:
            name = "%s/%s" % (f["folder"], f["filename"]) if f["folder"] else f["filename"]
            print("%s  %12d  %s  %s" % (f["created_at"], f["size"], name, f["key"]))
        return 0
    if args.command == "rm":
        for key in args.keys:
            session.delete_file(key)
            print("deleted %s" % key)
        return 0
    if args.command == "link":
        link = session.signed_url(args.key, args.ttl, "inline" if args.inline else "attachment")
        print(link["url"])
        print("expires %s" % link["expires_at"], file=sys.stderr)
        return 0
    if args.command == "zip":
        batch = session.batch_download(args.keys, args.name)
        size = session.download(batch["url"], args.output)
        print("wrote %s (%d files, %d bytes)" % (args.output, len(args.keys), size))
        return 0
    usage = session.usage()
    if args.json:
        print(json.dumps(usage))
    else:
        print("used %d of %d bytes, %d reserved by unfinished uploads"
              % (usage["used_bytes"], usage["quota_bytes"], usage["reserved_bytes"]))
    return 0


def upload_files(session: UserSession, files: List[str], folder: Optional[str], chunk_size: Optional[int]) -> int:
    failed = 0
    for path in files:
        try:
            options = {} if chunk_size is None else {"chunk_size": chunk_size}
            record = session.upload(path, folder=folder, on_progress=resume_reporter(path), **options)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            failed += 1
            print("failed %s: %s" % (path, error_message(error)), file=sys.stderr)
            continue
        print("uploaded %s -> %s (%d bytes, sha256 %s)" % (path, record["key"], record["size"], record["sha256"]))
    return 1 if failed else 0


def resume_reporter(path: str) -> Callable[[int, int], None]:
    """Says so when an upload picks up where an earlier run stopped (its first report is the server's offset)."""
    reported = []  # type: List[int]

    def on_progress(sent: int, total: int) -> None:
        if not reported:
            reported.append(sent)
            if sent > 0:
                print("resuming %s at %d of %d bytes" % (path, sent, total), file=sys.stderr)
    return on_progress


def store_path(env: Mapping[str, str]) -> str:
    explicit = env.get("STREAM_LINE_URL_STORE")
    if explicit:
        return explicit
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "stream-line", "python-upload-urls.json")
