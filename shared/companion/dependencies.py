"""Which package modules a notebook depends on, for its cache key.

A notebook is stale when its code, its parameters, or the source of a package module it uses changed. The
modules it uses are the ones its code cells import (``import companion.x``, ``from companion import x``,
``from companion.x import y``), closed over the package's own import graph (every ``import`` statement in a
module, also those inside functions, absolute or relative), plus every parent package's ``__init__``. Only
files tracked by git count when the package lives in a git checkout, so scratch files never make a notebook
stale; a tracked file is hashed with its working-tree content, which is what a run executes.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import nbformat


class Package:
    """A package's source tree: module names <-> files, import graph, hashes.

    ``Package(Path(".../shared/companion"))`` for the real one; tests build small trees in a temporary folder.
    """

    def __init__(self, directory: Path, name: str | None = None):
        self.directory = Path(directory).resolve()
        self.name = name or self.directory.name
        self.files = self._source_files()

    def _source_files(self) -> dict[str, Path]:
        tracked = _git_tracked(self.directory)
        files = {}
        for path in sorted(self.directory.rglob("*.py")):
            if "__pycache__" in path.parts or (tracked is not None and path not in tracked):
                continue
            rel = path.relative_to(self.directory).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            files[".".join((self.name, *parts))] = path
        return files

    def is_package(self, module: str) -> bool:
        return self.files.get(module, Path()).name == "__init__.py"

    def imports_of_source(self, source: str, module: str | None = None) -> set[str]:
        """Package modules that ``source`` imports. ``module`` is the importing module's name (for relative
        imports); ``None`` for notebook code."""
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return set()
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(self._known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node, module)
                if base is None:
                    continue
                found.add(self._known(base))
                for alias in node.names:  # ``from companion import flows``: flows may be a module
                    candidate = f"{base}.{alias.name}"
                    if candidate in self.files:
                        found.add(candidate)
        found.discard("")
        return found

    def _absolute(self, node: ast.ImportFrom, module: str | None) -> str | None:
        if node.level == 0:
            return node.module
        if module is None:
            return None
        package = module if self.is_package(module) else module.rpartition(".")[0]
        parts = package.split(".")
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    def _known(self, name: str | None) -> str:
        """The longest prefix of ``name`` that is a module of this package, else ''."""
        while name:
            if name in self.files:
                return name
            name = name.rpartition(".")[0]
        return ""

    def closure(self, modules: Iterable[str]) -> set[str]:
        """``modules`` plus everything they import from the package, transitively, plus parent packages."""
        seen: set[str] = set()
        todo = [m for m in modules if m in self.files]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            parent = name.rpartition(".")[0]
            if parent:
                todo.append(parent)
            todo.extend(self.imports_of_source(self.files[name].read_text(), name) - seen)
        return seen

    def notebook_modules(self, nb: nbformat.NotebookNode) -> set[str]:
        """The closure of the package modules a notebook's code cells import."""
        direct: set[str] = set()
        for cell in nb.cells:
            if cell.cell_type == "code":
                direct |= self.imports_of_source(_python_only(cell.source))
        return self.closure(direct)

    def hash(self, modules: Iterable[str]) -> str:
        """SHA-256 over the (relative path, content) of ``modules``' files, in a fixed order."""
        h = hashlib.sha256()
        for name in sorted(set(modules)):
            path = self.files[name]
            h.update(str(path.relative_to(self.directory)).encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
        return h.hexdigest()


def _python_only(source: str) -> str:
    """A cell without IPython magics and shell escapes, so that ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _git_tracked(directory: Path) -> frozenset[Path] | None:
    """Files git tracks under ``directory`` (None when it is not in a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--full-name", "."], cwd=directory, capture_output=True, timeout=30
        )
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or top.returncode != 0:
        return None  # not a git checkout (e.g. an installed copy): every file counts
    root = Path(top.stdout.strip()).resolve()
    return frozenset(root / p for p in out.stdout.decode().split("\0") if p)
