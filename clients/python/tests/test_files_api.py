"""The files API from a user session: listing across pages, metadata, signed links with Range,
batch ZIPs, delete, usage, and another user's files answering not_found."""
import os
import urllib.error
import urllib.request
import zipfile

from .support import MiB, ServerTestCase, sha256


class FilesApiTest(ServerTestCase):
    def test_listing_follows_the_cursor_across_pages(self) -> None:
        session = self.session_for(self.new_user())
        records = [session.upload(("file %d\n" % i).encode(), filename="f%d.txt" % i, folder="pages" if i % 2 else "")
                   for i in range(7)]
        newest_first = [r["key"] for r in reversed(records)]

        first = session.list_my_files(limit=3)
        self.assertEqual([f["key"] for f in first["files"]], newest_first[:3])
        self.assertIsInstance(first["next_cursor"], str)
        second = session.list_my_files(limit=3, cursor=first["next_cursor"])
        self.assertEqual([f["key"] for f in second["files"]], newest_first[3:6])

        self.assertEqual([f["key"] for f in session.iter_my_files(page_size=2)], newest_first)
        self.assertEqual([f["filename"] for f in session.iter_my_files(folder="pages", page_size=1)], ["f5.txt", "f3.txt", "f1.txt"])
        self.assertEqual([f["key"] for f in self.service.iter_user_files(records[0]["user_id"], page_size=3)], newest_first)
        self.assert_refused("invalid_parameter", 400, session.list_my_files, cursor="not-a-cursor")
        self.assert_refused("invalid_parameter", 400, session.list_my_files, limit=0)

    def test_metadata_usage_and_delete(self) -> None:
        session = self.session_for(self.new_user())
        kept = session.upload(b"kept", filename="kept.txt")
        gone = session.upload(b"to be deleted", filename="gone.txt", folder="tmp")
        metadata = session.get_file_metadata(gone["key"])
        self.assertEqual(metadata, gone)
        self.assertEqual((metadata["filename"], metadata["folder"], metadata["size"], metadata["sha256"]),
                         ("gone.txt", "tmp", 13, sha256(b"to be deleted")))
        self.assertEqual(session.usage()["used_bytes"], 4 + 13)
        self.assertIsNone(session.delete_file(gone["key"]))
        self.assert_refused("not_found", 404, session.get_file_metadata, gone["key"])
        self.assert_refused("not_found", 404, session.delete_file, gone["key"])
        usage = session.usage()
        self.assertEqual((usage["used_bytes"], usage["reserved_bytes"]), (4, 0))
        self.assertGreater(usage["quota_bytes"], 0)
        self.assertEqual([f["key"] for f in session.iter_my_files()], [kept["key"]])

    def test_a_signed_link_serves_the_bytes_whole_and_by_range(self) -> None:
        session = self.session_for(self.new_user())
        data = os.urandom(2 * MiB + 11)
        record = session.upload(data, filename="movie.bin", chunk_size=MiB)
        link = session.signed_url(record["key"], ttl=120, disposition="inline")
        self.assertEqual(set(link), {"url", "expires_at"})

        target = os.path.join(self.dir, "whole.bin")
        self.assertEqual(session.download(link["url"], target), len(data))
        with open(target, "rb") as stream:
            self.assertEqual(sha256(stream.read()), sha256(data))

        ranged = urllib.request.Request(link["url"], headers={"Range": "bytes=1000-1999"})
        with urllib.request.urlopen(ranged) as res:
            self.assertEqual(res.status, 206)
            self.assertEqual(res.headers["Content-Range"], "bytes 1000-1999/%d" % len(data))
            self.assertEqual(res.read(), data[1000:2000])
        suffix = urllib.request.Request(link["url"], headers={"Range": "bytes=-10"})
        with urllib.request.urlopen(suffix) as res:
            self.assertEqual((res.status, res.read()), (206, data[-10:]))
        self.assert_refused("invalid_parameter", 400, session.signed_url, record["key"], ttl=0)

        tampered = link["url"].replace("sig=", "sig=x")
        self.assert_refused("invalid_signature", 403, session.download, tampered, os.path.join(self.dir, "no.bin"))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no.bin")), "a refused download leaves no file")

    def test_batch_download_streams_one_zip_of_the_files(self) -> None:
        session = self.session_for(self.new_user())
        one = session.upload(b"one\n", filename="one.txt", folder="zip")
        two = session.upload(b"two two\n", filename="two.txt", folder="zip")
        same_name = session.upload(b"again\n", filename="one.txt", folder="zip")
        batch = session.batch_download([one["key"], two["key"], same_name["key"]], "my files")
        self.assertEqual(set(batch), {"token", "url", "expires_at"})
        archive = os.path.join(self.dir, "out.zip")
        with open(archive, "wb") as out:
            size = session.download(batch["url"], out)
        self.assertEqual(size, os.path.getsize(archive))
        with zipfile.ZipFile(archive) as z:
            contents = {name: z.read(name) for name in z.namelist()}
        self.assertEqual(set(contents.values()), {b"one\n", b"two two\n", b"again\n"})
        self.assertEqual(sorted(contents), ["zip/one (1).txt", "zip/one.txt", "zip/two.txt"])
        self.assert_refused("invalid_parameter", 400, session.batch_download, [])

    def test_another_users_files_and_uploads_are_not_found(self) -> None:
        alice = self.session_for(self.new_user("alice"))
        bob_id = self.new_user("bob")
        bob = self.session_for(bob_id)
        mine = alice.upload(b"private", filename="p.txt")
        self.assert_refused("not_found", 404, bob.get_file_metadata, mine["key"])
        self.assert_refused("not_found", 404, bob.delete_file, mine["key"])
        self.assert_refused("not_found", 404, bob.signed_url, mine["key"])
        self.assert_refused("not_found", 404, bob.batch_download, [mine["key"]])
        self.assertEqual(bob.list_my_files(), {"files": [], "next_cursor": None})

        # An unfinished upload of Alice's: Bob can neither see it nor write to it.
        urls = []

        class Stop(Exception):
            pass

        def stop(sent: int, total: int) -> None:
            if sent > 0:
                raise Stop()
        with self.assertRaises(Stop):
            alice.upload(os.urandom(MiB), chunk_size=MiB // 4, on_upload_url=urls.append, on_progress=stop)
        self.assertIsNone(bob.upload_status(urls[0]))
        own = bob.upload(b"bob's bytes", upload_url=urls[0], filename="b.txt")  # not Alice's: a new upload
        self.assertEqual(own["user_id"], bob_id)
        self.assertIsNotNone(alice.upload_status(urls[0]))
        self.assertEqual(alice.get_file_metadata(mine["key"]), mine)

