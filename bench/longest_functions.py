"""The longest functions of the tree (lines from ``def`` to the last line of the body).

A size check for clean-ups (issue 12 measured before and after with it); nested functions are
counted on their own and inside their parent.

Usage: ``python bench/longest_functions.py [N]`` (default 10), from the repository root.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOTS = ("src", "analysis", "figures", "tests", "bench")


def longest(n: int = 10, root: Path = Path(".")) -> list[tuple[int, str]]:
    """``[(lines, "path:line name"), ...]``, longest first."""
    rows = []
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    rows.append((node.end_lineno - node.lineno + 1,
                                 f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(rows, reverse=True)[:n]


if __name__ == "__main__":
    for size, where in longest(int(sys.argv[1]) if len(sys.argv) > 1 else 10):
        print(size, where)
