"""The service client: minting user tokens, acting for users, health and keys; the typed errors
a caller meets (bad tokens, bad parameters, a server that is not there)."""
import datetime
import os

from streamline import ServiceClient, StreamLineError, UserSession, error_message

from .support import ENV, URL, ServerTestCase


class ServiceTest(ServerTestCase):
    def test_a_minted_token_acts_for_that_user(self) -> None:
        carol = self.new_user("carol")
        minted = self.service.generate_user_token(carol, 2)
        self.assertEqual(minted["user_id"], carol)
        expires = datetime.datetime.strptime(minted["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        hours = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 3600
        self.assertTrue(1.9 < hours <= 2, hours)
        session = UserSession(URL, minted["token"])
        self.assertEqual(session.list_my_files(), {"files": [], "next_cursor": None})
        record = session.upload(b"for carol", filename="c.txt")
        self.assertEqual(record["user_id"], carol)

        self.assert_refused("invalid_parameter", 400, self.service.generate_user_token, carol, 0)
        self.assert_refused("invalid_user_id", 400, self.service.generate_user_token, "../etc", 1)

    def test_a_session_from_the_service_then_list_metadata_usage_delete_for_that_user(self) -> None:
        dave = self.new_user("dave")
        session = self.service.create_user_session(dave)
        a = session.upload(b"first", filename="a.txt", folder="docs")
        b = session.upload(b"second!", filename="b.txt", folder="docs")
        c = session.upload(b"third", filename="c.txt")
        service = self.service
        self.assertEqual({f["key"] for f in service.iter_user_files(dave)}, {a["key"], b["key"], c["key"]})
        self.assertEqual(sorted(f["filename"] for f in service.list_user_files(dave, folder="docs")["files"]), ["a.txt", "b.txt"])
        page = service.list_user_files(dave, limit=2)
        self.assertEqual((len(page["files"]), bool(page["next_cursor"])), (2, True))
        self.assertEqual(service.get_file_metadata(b["key"]), b)
        self.assertEqual(service.user_usage(dave)["used_bytes"], 17)
        service.delete_file(a["key"])
        self.assert_refused("not_found", 404, service.get_file_metadata, a["key"])
        self.assert_refused("not_found", 404, service.delete_file, a["key"])
        self.assertEqual(service.user_usage(dave)["used_bytes"], 12)

    def test_health_and_keys(self) -> None:
        health = self.service.health_check()
        self.assertEqual((health["status"], health["db"]["ok"]), ("ok", True))
        keys = self.service.get_jwks()["keys"]
        self.assertEqual(len(keys), 1)
        self.assertNotIn("d", keys[0], "no private part")

    def test_typed_errors(self) -> None:
        wrong = ServiceClient(URL, "not-the-service-token-at-all")
        error = self.assert_refused("invalid_token", 401, wrong.list_user_files, "dave")
        self.assertIn("invalid_token", str(error))
        self.assert_refused("invalid_user_id", 400, self.service.list_user_files, "")

        expired = UserSession(URL, ENV["STREAM_LINE_TEST_EXPIRED_TOKEN"])
        self.assert_refused("token_expired", 401, expired.list_my_files)
        self.assert_refused("token_expired", 401, expired.upload, b"x", retry_delays=())
        self.assert_refused("invalid_token", 401, UserSession(URL, "not.a.jwt").usage)
        self.assert_refused("unauthenticated", 401, UserSession(URL, "").usage)

        gone = ServiceClient("http://127.0.0.1:9", "token")
        error = self.assert_refused("network_error", 0, gone.health_check)
        self.assertEqual(error_message(error), "The server could not be reached. Check the address and your connection.")
        self.assert_refused("network_error", 0, UserSession("http://127.0.0.1:9", "t").upload, b"x", retry_delays=())
        self.assertIsInstance(error, StreamLineError)
        # Stream-Line under a path it does not serve: the route is missing, not a file.
        misplaced = UserSession(URL + "/uploads", ENV["STREAM_LINE_TEST_EXPIRED_TOKEN"])
        error = self.assert_refused("not_found", 404, misplaced.usage)
        self.assertEqual(error_message(error), "The server has no such route: check its address (and the path after the host name, if any).")
        with self.assertRaises(ValueError):
            ServiceClient("ftp://example.com", "token")

    def test_quota_exceeded_and_upload_too_large_at_creation(self) -> None:
        session = self.session_for(self.new_user())
        quota = session.usage()["quota_bytes"]
        largest = int(ENV["STREAM_LINE_TEST_MAX_UPLOAD_BYTES"])
        self.assertGreater(largest, quota, "the server is started with room for both refusals")
        over_quota = self.sparse_file("over-quota.bin", quota + 1)
        too_large = self.sparse_file("too-large.bin", largest + 1)
        # Declared hashes: the bytes are never sent, so sparse files are not hashed for nothing.
        error = self.assert_refused("quota_exceeded", 413, session.upload, over_quota, sha256="0" * 64)
        self.assertTrue(error.detail)
        self.assert_refused("upload_too_large", 413, session.upload, too_large, sha256="0" * 64)
        self.assertEqual(session.usage()["reserved_bytes"], 0)

    def sparse_file(self, name: str, size: int) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as stream:
            stream.truncate(size)  # no disk used
        return path
