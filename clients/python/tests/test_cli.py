"""python3 -m streamline as a user runs it: every command, refusals in words, exit codes."""
import json
import os
import subprocess
import sys
import urllib.request
import zipfile
from typing import List, Tuple

from .support import ENV, PACKAGE_ROOT, URL, ServerTestCase, sha256


class CliTest(ServerTestCase):
    def cli(self, *args: str, **env: str) -> Tuple[int, str, str]:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": self.dir, "PYTHONPATH": PACKAGE_ROOT,
                    "PYTHONDONTWRITEBYTECODE": "1", "STREAM_LINE_URL": URL}
        full_env.update(env)
        run = subprocess.run([sys.executable, "-m", "streamline"] + list(args), cwd=self.dir, env=full_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        return run.returncode, run.stdout.decode(), run.stderr.decode()

    def test_every_command(self) -> None:
        code, token, err = self.cli("token", self.new_user("cli"), "--hours", "1",
                                    STREAM_LINE_SERVICE_TOKEN=ENV["STREAM_LINE_TEST_SERVICE_TOKEN"])
        self.assertEqual(code, 0, err)
        self.assertRegex(err, r"token for cli-\w+, expires ")
        as_user = {"STREAM_LINE_TOKEN": token.strip()}

        a = self.write_file("a.txt", b"alpha\n")
        b = self.write_file("b.txt", b"bravo!\n")
        code, out, err = self.cli("upload", a, b, "--folder", "docs", **as_user)
        self.assertEqual(code, 0, err)
        self.assertIn("sha256 %s" % sha256(b"alpha\n"), out)
        self.assertTrue(os.path.exists(os.path.join(self.dir, ".config", "stream-line", "python-upload-urls.json")),
                        "the URL store defaults to ~/.config/stream-line/")

        code, out, err = self.cli("ls", "--json", **as_user)
        files = json.loads(out)  # type: List[dict]
        self.assertEqual(sorted((f["folder"], f["filename"]) for f in files), [("docs", "a.txt"), ("docs", "b.txt")])
        keys = {f["filename"]: f["key"] for f in files}
        code, out, err = self.cli("ls", **as_user)
        self.assertEqual(code, 0, err)
        self.assertIn("docs/a.txt", out)

        code, out, err = self.cli("link", keys["a.txt"], "--ttl", "60", **as_user)
        self.assertEqual(code, 0, err)
        with urllib.request.urlopen(out.strip()) as res:
            self.assertEqual(res.read(), b"alpha\n")

        archive = os.path.join(self.dir, "both.zip")
        code, out, err = self.cli("zip", keys["a.txt"], keys["b.txt"], "-o", archive, **as_user)
        self.assertEqual(code, 0, err)
        with zipfile.ZipFile(archive) as z:
            self.assertEqual(sorted(z.namelist()), ["docs/a.txt", "docs/b.txt"])

        code, out, err = self.cli("rm", keys["a.txt"], **as_user)
        self.assertEqual((code, out.strip()), (0, "deleted %s" % keys["a.txt"]))
        code, out, err = self.cli("usage", "--json", **as_user)
        self.assertEqual(json.loads(out)["used_bytes"], len(b"bravo!\n"))

    def test_refusals_and_wrong_usage(self) -> None:
        code, out, err = self.cli("usage", STREAM_LINE_TOKEN="not.a.jwt")
        self.assertEqual(code, 1)
        self.assertIn("The token was not accepted", err)
        code, out, err = self.cli("rm", "users/nobody/2020/01/01/00000000000000000000000000000000.txt",
                                  STREAM_LINE_TOKEN=ENV["STREAM_LINE_TEST_TOKEN"])
        self.assertEqual(code, 1)
        self.assertIn("Not found", err)
        code, out, err = self.cli("upload", os.path.join(self.dir, "missing.bin"), STREAM_LINE_TOKEN=ENV["STREAM_LINE_TEST_TOKEN"])
        self.assertEqual(code, 1)
        self.assertIn("failed", err)
        self.assertEqual(self.cli("usage")[0], 2, "no token is wrong usage")
        self.assertEqual(self.cli("token", "someone")[0], 2, "no service token is wrong usage")
        self.assertEqual(self.cli()[0], 2)
