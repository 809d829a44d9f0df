"""Per-notebook cache keys: the package modules a notebook imports, through the package's import graph,
tracked files only (on a temporary package tree in its own git repository), and on the real package."""

from __future__ import annotations

import subprocess
import textwrap

import nbformat
import pytest
from companion import notebooks, papers, paths
from companion.dependencies import Package

FILES = {
    "__init__.py": "",
    "core.py": "import math\n",
    "train.py": "from . import core\n",
    "flows/__init__.py": "from .network import Network\n",
    "flows/network.py": "from ..core import *\n",
    "fw/__init__.py": "from . import optim\n",
    "fw/optim.py": "import pkg.train\n\ndef lazy():\n    from pkg.extra import helper\n",
    "extra.py": "helper = 1\n",
    "unused.py": "x = 1\n",
}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "repo"
    for rel, text in FILES.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "tree"], cwd=root, check=True)
    return root / "pkg"


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s)) for s in sources]
    return nb


def test_closure_follows_absolute_relative_and_function_level_imports(tree):
    pkg = Package(tree)
    assert pkg.notebook_modules(_nb("from pkg import flows")) == {"pkg", "pkg.flows", "pkg.flows.network", "pkg.core"}
    assert pkg.notebook_modules(_nb("%matplotlib inline\nimport pkg.fw as fw")) == {
        "pkg",
        "pkg.fw",
        "pkg.fw.optim",
        "pkg.train",
        "pkg.core",
        "pkg.extra",
    }
    assert pkg.notebook_modules(_nb("import numpy", "print(1)")) == set()


def test_a_change_makes_only_dependent_notebooks_stale(tree):
    flows_nb, fw_nb = _nb("from pkg.flows import Network"), _nb("from pkg.fw import optim")
    before = Package(tree)
    keys = {n: before.hash(before.notebook_modules(nb)) for n, nb in (("flows", flows_nb), ("fw", fw_nb))}

    def keys_now():
        pkg = Package(tree)
        return {n: pkg.hash(pkg.notebook_modules(nb)) for n, nb in (("flows", flows_nb), ("fw", fw_nb))}

    (tree / "unused.py").write_text("x = 2\n")  # imported by nobody
    assert keys_now() == keys
    (tree / "extra.py").write_text("helper = 2\n")  # only fw imports it (inside a function)
    now = keys_now()
    assert now["flows"] == keys["flows"] and now["fw"] != keys["fw"]
    (tree / "core.py").write_text("import math  # both\n")  # everyone depends on core
    later = keys_now()
    assert later["flows"] != now["flows"] and later["fw"] != now["fw"]


def test_untracked_files_never_count(tree):
    pkg = Package(tree)
    key = pkg.hash(pkg.notebook_modules(_nb("import pkg.train")))
    (tree / "scratch.py").write_text("junk = 1\n")
    (tree / "train.py").write_text("from . import core\nfrom . import scratch\n")
    again = Package(tree)
    assert "pkg.scratch" not in again.files
    assert "pkg.scratch" not in again.notebook_modules(_nb("import pkg.train"))
    assert again.hash(again.notebook_modules(_nb("import pkg.train"))) != key  # train.py itself changed


def test_outside_git_every_file_counts(tmp_path):
    (tmp_path / "solo").mkdir()
    (tmp_path / "solo" / "__init__.py").write_text("")
    (tmp_path / "solo" / "a.py").write_text("")
    assert set(Package(tmp_path / "solo").files) == {"solo", "solo.a"}


def test_real_package_chapters_depend_on_their_own_modules():
    pkg = Package(paths.PACKAGE_DIR)
    by_chapter = {}
    for slug in papers.slugs():
        for nb in papers.load(slug).notebooks:
            by_chapter.setdefault(slug, set()).update(pkg.notebook_modules(notebooks.read(nb.path)))
    assert "companion.repro" in by_chapter["flows-over-time"]
    assert not any(m.startswith("companion.frankwolfe") for m in by_chapter["flows-over-time"])
    assert not any(m.startswith("companion.flows") for m in by_chapter["sfw"])
    assert "companion.train" in by_chapter["sfw"] and "companion.train" in by_chapter["imp-retraining"]
