"""Shared fixtures. Every test runs quietly and never writes into the committed ``results/``."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


# The pinned numerics, quiet progress bars and the throw-away records folder for nbval's kernels come from
# the project's pytest plugin, companion.pytest_plugin (loaded through pyproject.toml).


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The HTML book built once per session with warnings as errors: (completed process, html folder)."""
    import subprocess

    from companion import paths
    from companion.cli import jupyter_book_command

    out_dir = tmp_path_factory.mktemp("book")
    out = subprocess.run(
        [
            *jupyter_book_command(),
            "build",
            str(paths.book_dir()),
            "--path-output",
            str(out_dir),
            "-W",
            "-n",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return out, out_dir / "_build" / "html"


def make_notebook(path: Path, parameters: str, body: str) -> Path:
    """Write a small notebook with a tagged parameters cell and one body cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"), p, nbformat.v4.new_code_cell(textwrap.dedent(body).strip())]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


DEMO_YAML = """
slug: demo
title: "A demo chapter"
bibkey: demo2024
venue: "Nowhere, 2024"
notebooks:
  - name: 01-square
    title: "Squares a number"
    profiles:
      smoke: {x: 2}
      gpu: {x: 5}
      paper: {x: 7}
    requires:
      paper: [squares/table.csv]
    choices:
      mode: [plain, twice]
    tolerances:
      "timing.*": null
      "noisy": 0.5
  - name: 02-cube
    title: "Cubes a number"
    profiles:
      smoke: {x: 2}
claims:
  - id: square-positive
    claim: "The square is at least 9"
    where: "Table 1"
    paper: "9"
    values: {y: "01-square:square"}
    ours: "y"
    check: "y >= 9"
    status: checked
  - id: square-huge
    claim: "The square exceeds a million"
    where: "Table 2"
    paper: "10^6"
    values: {y: "01-square:square"}
    ours: "y"
    check: "y > 1e6"
    status: gpu-only
    reason: "needs a big x"
"""


@pytest.fixture
def demo_project(tmp_path, monkeypatch):
    """A throw-away project root with one chapter ``demo`` whose notebooks square and cube ``x`` and fail on
    request (``fail=True``), for runner and CLI tests."""
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "demo.yaml").write_text(DEMO_YAML)
    make_notebook(
        tmp_path / "book" / "demo" / "01-square.ipynb",
        parameters="""
                      profile = "book"
                      seed = 0
                      device = "auto"
                      x = 3
                      mode = "plain"
                      fail = False
                      data_root = ""
                  """,
        body="""
                      from companion import results
                      rec = results.Recorder("demo", "01-square", profile)
                      rec.record("square", x * x)
                      if fail:
                          raise RuntimeError("failing on purpose")
                      print("square", x * x)
                  """,
    )
    make_notebook(
        tmp_path / "book" / "demo" / "02-cube.ipynb",
        parameters="""
                      profile = "book"
                      seed = 0
                      device = "auto"
                      x = 3
                      fail = False
                  """,
        body="""
                      from companion import results
                      rec = results.Recorder("demo", "02-cube", profile)
                      rec.record("cube", x ** 3)
                      if fail:
                          raise RuntimeError("cube failing on purpose")
                  """,
    )
    for page in ("scoreboard.ipynb", "runtimes.ipynb"):
        shutil.copyfile(REPO / "book" / page, tmp_path / "book" / page)
    monkeypatch.setenv("COMPANION_ROOT", str(tmp_path))
    monkeypatch.delenv("COMPANION_RESULTS_DIR", raising=False)
    monkeypatch.delenv("COMPANION_DATA_ROOT", raising=False)
    return tmp_path
