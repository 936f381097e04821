"""What every test needs: the server under test (from the environment), fresh users, temp files.

The server is started by test/clients/python.test.ts (`npm test -- python`), which sets:
  STREAM_LINE_TEST_URL            the server's URL
  STREAM_LINE_TEST_SERVICE_TOKEN  its service token
  STREAM_LINE_TEST_TOKEN          a user token for STREAM_LINE_TEST_USER, signed by the server
  STREAM_LINE_TEST_EXPIRED_TOKEN  a token of the same user that expired a minute ago
  STREAM_LINE_TEST_MAX_UPLOAD_BYTES  the server's MAX_UPLOAD_BYTES, larger than its quota
Without them the tests are skipped.
"""
import hashlib
import os
import shutil
import tempfile
import unittest
import uuid
from typing import Any, Callable

from streamline import ServiceClient, StreamLineError, UserSession

ENV = os.environ
URL = ENV.get("STREAM_LINE_TEST_URL", "")
MiB = 1024 * 1024
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ServerTestCase(unittest.TestCase):
    """A test against the real server, with a temp dir of its own."""

    def setUp(self) -> None:
        if not URL:
            raise unittest.SkipTest("STREAM_LINE_TEST_URL is not set: run through `npm test -- python`")
        self.dir = tempfile.mkdtemp(prefix="sl-py-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    @property
    def service(self) -> ServiceClient:
        return ServiceClient(URL, ENV["STREAM_LINE_TEST_SERVICE_TOKEN"])

    def new_user(self, prefix: str = "py") -> str:
        """A user id no other test (nor another interpreter's run) uses."""
        return "%s-%s" % (prefix, uuid.uuid4().hex[:12])

    def session_for(self, user_id: str, **options: Any) -> UserSession:
        return self.service.create_user_session(user_id, **options)

    def write_file(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path

    def assert_refused(self, code: str, status: int, call: Callable[..., Any], *args: Any, **kwargs: Any) -> StreamLineError:
        with self.assertRaises(StreamLineError) as caught:
            call(*args, **kwargs)
        error = caught.exception
        self.assertEqual((error.code, error.status), (code, status), "detail: %s" % error.detail)
        return error
