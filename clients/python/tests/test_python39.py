"""The package promises Python 3.9: no syntax of a later version may creep in, whichever
interpreter runs the tests."""
import ast
import os
import unittest
from typing import Iterator

from .support import PACKAGE_ROOT


def annotations(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


class Python39SyntaxTest(unittest.TestCase):
    def test_every_module_parses_as_python_3_9(self) -> None:
        checked = 0
        for folder in ("streamline", "tests"):
            for name in sorted(os.listdir(os.path.join(PACKAGE_ROOT, folder))):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(PACKAGE_ROOT, folder, name)
                with open(path, encoding="utf-8") as stream:
                    tree = ast.parse(stream.read(), path, feature_version=(3, 9))
                for annotation in annotations(tree):
                    # `X | None` parses in 3.9 but fails when the annotation is evaluated (PEP 604 is 3.10).
                    unions = [n for n in ast.walk(annotation) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)]
                    self.assertEqual(unions, [], "%s:%d uses an `X | Y` annotation" % (path, annotation.lineno))
                checked += 1
        self.assertGreater(checked, 10)
