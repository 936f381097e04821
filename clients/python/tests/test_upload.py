"""Resumable uploads: SHA-256 declared and checked, chunked PATCHes, resume from the URL store
after an exception mid-PATCH and after the process was killed."""
import io
import json
import os
import signal
import subprocess
import sys
import time

from streamline import FileUrlStore, MemoryUrlStore, StreamLineError, UserSession

from .cutting_proxy import CuttingProxy
from .support import ENV, MiB, PACKAGE_ROOT, URL, ServerTestCase, sha256


class Interrupted(Exception):
    pass


class UploadTest(ServerTestCase):
    def test_small_upload_with_the_token_from_the_environment(self) -> None:
        session = UserSession(URL, ENV["STREAM_LINE_TEST_TOKEN"])
        record = session.upload(b"hello, world\n", filename="hello.txt", filetype="text/plain", folder="notes")
        self.assertEqual(
            {k: record[k] for k in ("user_id", "folder", "filename", "content_type", "size", "sha256")},
            {"user_id": ENV["STREAM_LINE_TEST_USER"], "folder": "notes", "filename": "hello.txt",
             "content_type": "text/plain", "size": 13, "sha256": sha256(b"hello, world\n")})
        self.assertEqual(session.get_file_metadata(record["key"]), record)
        session.delete_file(record["key"])

    def test_multi_chunk_upload_of_a_path_reports_progress_and_records_the_sha256(self) -> None:
        session = self.session_for(self.new_user())
        data = os.urandom(3 * MiB + 17)
        path = self.write_file("holiday.jpg", data)
        progress = []
        record = session.upload(path, folder="main/pictures", chunk_size=MiB,
                                on_progress=lambda sent, total: progress.append((sent, total)))
        self.assertEqual((record["filename"], record["folder"], record["size"], record["sha256"]),
                         ("holiday.jpg", "main/pictures", len(data), sha256(data)))
        self.assertEqual(progress[0], (0, len(data)))
        self.assertEqual(progress[-1], (len(data), len(data)))
        self.assertEqual([sent for sent, _ in progress], sorted(sent for sent, _ in progress))
        self.assertGreaterEqual(len(progress), 5)
        self.assertEqual(session.usage()["used_bytes"], len(data))

    def test_file_objects_seekable_or_not_and_an_empty_file(self) -> None:
        session = self.session_for(self.new_user())
        data = os.urandom(MiB + 3)
        with open(self.write_file("seekable.bin", data), "rb") as stream:
            stream.seek(3)  # uploads from where the object stands, as it would be read
            seekable = session.upload(stream, chunk_size=MiB // 2)
        self.assertEqual((seekable["filename"], seekable["sha256"], seekable["size"]), ("seekable.bin", sha256(data[3:]), len(data) - 3))

        class OneWay(io.RawIOBase):
            def __init__(self, data: bytes) -> None:
                self.inner = io.BytesIO(data)

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: bytearray) -> int:
                block = self.inner.read(min(len(buffer), 1000))
                buffer[:len(block)] = block
                return len(block)

        spooled = session.upload(io.BufferedReader(OneWay(data)), filename="pipe.bin", chunk_size=MiB // 2)
        self.assertEqual((spooled["filename"], spooled["sha256"], spooled["size"]), ("pipe.bin", sha256(data), len(data)))
        empty = session.upload(b"", filename="empty.txt")
        self.assertEqual((empty["size"], empty["sha256"]), (0, sha256(b"")))
        self.assertEqual(len(list(session.iter_my_files())), 3)

    def test_a_wrong_sha256_is_refused_with_checksum_mismatch_and_nothing_is_kept(self) -> None:
        store = MemoryUrlStore()
        session = self.session_for(self.new_user(), url_store=store)
        data = os.urandom(2 * MiB)
        error = self.assert_refused("checksum_mismatch", 460, session.upload, data, sha256=sha256(b"other bytes"),
                                    chunk_size=MiB, filename="damaged.bin")
        self.assertIsInstance(error, StreamLineError)
        self.assertIn("discarded", error.detail or "")
        self.assertEqual(session.list_my_files(), {"files": [], "next_cursor": None})
        self.assertEqual(session.usage()["reserved_bytes"], 0)
        self.assertEqual(store.entries, {}, "a discarded upload is not kept for resuming")
        with self.assertRaises(ValueError):
            session.upload(data, sha256="not hex")

    def test_an_exception_mid_patch_stops_the_upload_and_the_store_resumes_it(self) -> None:
        store = FileUrlStore(os.path.join(self.dir, "store", "urls.json"))
        user = self.new_user()
        session = self.session_for(user, url_store=store)
        data = os.urandom(4 * MiB)
        path = self.write_file("resume.bin", data)
        urls = []

        def stop_mid_chunk(sent: int, total: int) -> None:
            if sent >= MiB + MiB // 2:  # inside the second PATCH's body
                raise Interrupted()

        with self.assertRaises(Interrupted):
            session.upload(path, chunk_size=MiB, on_progress=stop_mid_chunk, on_upload_url=urls.append)
        self.assertEqual(len(urls), 1)
        with open(store.path) as stream:
            self.assertEqual([entry["upload_url"] for entry in json.load(stream).values()], urls)
        status = session.upload_status(urls[0])
        self.assertIsNotNone(status)
        assert status is not None
        self.assertEqual(status.length, len(data))
        self.assertTrue(MiB <= status.offset < len(data), status)

        progress = []
        # A new session (as after a restart) with the same store file.
        resumed = self.session_for(user, url_store=FileUrlStore(store.path))
        record = resumed.upload(path, chunk_size=MiB, on_progress=lambda sent, total: progress.append(sent))
        self.assertGreaterEqual(progress[0], status.offset, "resumed from the server's offset, not from 0")
        self.assertEqual((record["size"], record["sha256"]), (len(data), sha256(data)))
        self.assertEqual([f["key"] for f in resumed.iter_my_files()], [record["key"]], "exactly one file")
        self.assertEqual(resumed.upload_status(urls[0]), (len(data), len(data), record["key"]),
                         "a finished upload's URL answers complete, with its file's key")
        with open(store.path) as stream:
            self.assertEqual(json.load(stream), {}, "the store forgets a finished upload")
        self.assertEqual(resumed.usage()["reserved_bytes"], 0)

    def test_a_killed_process_resumes_from_the_stored_url_with_the_cli(self) -> None:
        user = self.new_user()
        token = self.service.generate_user_token(user)["token"]
        data = os.urandom(4 * MiB + 5)
        path = self.write_file("killed.bin", data)
        store = os.path.join(self.dir, "urls.json")
        marker = os.path.join(self.dir, "stalled")
        env = dict(os.environ, STREAM_LINE_URL=URL, STREAM_LINE_TOKEN=token, STREAM_LINE_URL_STORE=store,
                   PYTHONPATH=PACKAGE_ROOT, PYTHONDONTWRITEBYTECODE="1")
        child = subprocess.Popen([sys.executable, "-m", "tests.stall_upload", path, str(MiB), marker],
                                 cwd=PACKAGE_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: os.path.exists(marker) or child.poll() is not None, "the child to stall mid-PATCH")
        finally:
            stalled = child.poll() is None
            child.send_signal(signal.SIGKILL)
            output = child.communicate()[0].decode()
        self.assertTrue(stalled, "the child exited instead of stalling: " + output)
        with open(store) as stream:
            [upload_url] = [entry["upload_url"] for entry in json.load(stream).values()]
        session = UserSession(URL, token)
        status = session.upload_status(upload_url)
        assert status is not None
        self.assertTrue(0 < status.offset < len(data), status)

        cli = subprocess.run([sys.executable, "-m", "streamline", "upload", path, "--chunk-size", str(MiB)],
                             cwd=PACKAGE_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        out, err = cli.stdout.decode(), cli.stderr.decode()
        self.assertEqual(cli.returncode, 0, out + err)
        self.assertRegex(err, r"resuming .*killed\.bin at \d+ of %d bytes" % len(data))
        resumed_at = int(err.split(" at ")[1].split(" ")[0])
        self.assertGreaterEqual(resumed_at, status.offset)
        self.assertIn("sha256 %s" % sha256(data), out)
        files = list(session.iter_my_files())
        self.assertEqual([(f["filename"], f["sha256"]) for f in files], [("killed.bin", sha256(data))], "exactly one file")
        with open(store) as stream:
            self.assertEqual(json.load(stream), {})


def wait_for(condition, what: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Polls a condition (never a fixed sleep deciding a result); fails after a generous timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


class DroppedConnectionTest(ServerTestCase):
    def test_a_patch_cut_with_no_answer_is_retried_from_the_servers_offset(self) -> None:
        proxy = CuttingProxy(URL)
        self.addCleanup(proxy.close)
        proxy.patch_plan = [None, MiB // 2]  # the second PATCH loses its connection after half a MiB
        token = self.service.generate_user_token(self.new_user())["token"]
        session = UserSession(proxy.url, token)
        data = os.urandom(3 * MiB + 1)
        progress = []
        record = session.upload(data, chunk_size=MiB, retry_delays=(0,), on_progress=lambda sent, total: progress.append(sent))
        self.assertEqual((record["size"], record["sha256"]), (len(data), sha256(data)))
        self.assertEqual(proxy.cuts, 1)
        self.assertEqual(proxy.requests[:4], ["POST", "PATCH", "PATCH", "HEAD"], "after the cut, a HEAD asks for the offset")
        self.assertEqual(set(proxy.requests[4:]), {"PATCH"})
        self.assertTrue(any(later <= earlier for earlier, later in zip(progress, progress[1:])),
                        "progress went back to the server's offset: %s" % progress)
        self.assertEqual(len(list(session.iter_my_files())), 1)
