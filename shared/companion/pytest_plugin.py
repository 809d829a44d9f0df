"""The project's pytest plugin (``-p companion.pytest_plugin`` in ``pyproject.toml``).

1. Every kernel nbval starts, and the test process itself, runs with the pinned numerical environment
   (:data:`companion.numerics.PINNED_ENV`, or the stand-in for another CPU that ``$COMPANION_STAND_IN``
   names), quiet progress bars, and records staged in a throw-away folder
   (``$COMPANION_RESULTS_DIR``) instead of the committed ``results/``.
2. nbval compares the cells marked ``# NBVAL_CHECK_OUTPUT`` as text. After the last cell of every chapter
   notebook this plugin adds one more test, ``<notebook>::records``: the records the re-execution wrote must
   reproduce the committed ``results/<slug>/<notebook>.book.json``, exactly or within the tolerances that
   ``papers/<slug>.yaml`` declares for that notebook. With ``pytest-xdist --dist loadfile`` the extra test
   stays on the worker that executed the notebook, after its cells. ``$COMPANION_RECORDS_REPORT=FILE``
   appends every record's deviation (also those within tolerance) to FILE as JSON lines.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from . import numerics


def pytest_configure(config):
    numerics.apply(numerics.kernel_numerics())  # the pin, or $COMPANION_STAND_IN for another CPU
    os.environ["COMPANION_QUIET"] = "1"
    os.environ.setdefault("COMPANION_RESULTS_DIR", tempfile.mkdtemp(prefix="companion-test-results-"))


class RecordsMismatch(AssertionError):
    """Re-executed records that do not reproduce the committed ones."""


class RecordsItem(pytest.Item):
    """Compares a re-executed notebook's records with the committed ones (see the module docstring)."""

    def __init__(self, *, slug: str, notebook: str, **kwargs):
        super().__init__(**kwargs)
        self.slug, self.notebook = slug, notebook

    def runtest(self) -> None:
        from . import papers, paths, results

        nb = papers.load(self.slug).notebook(self.notebook)
        staged = results.staged_path(paths.staging_dir(), self.slug, self.notebook)
        if not staged.exists():
            raise RecordsMismatch(f"{self.slug}/{self.notebook} recorded nothing when re-executed")
        actual = json.loads(staged.read_text())["values"]
        expected = results.load(self.slug, self.notebook, "book")
        problems = results.differences(expected, actual, nb.tolerances)
        report = os.environ.get("COMPANION_RECORDS_REPORT")
        if report:  # every deviation, also those within tolerance: what the tolerances are sized from
            deviations = {k: results.deviation(expected[k], actual[k]) for k in expected if k in actual}
            with open(report, "a") as fh:
                fh.write(
                    json.dumps(
                        {
                            "slug": self.slug,
                            "notebook": self.notebook,
                            "deviations": deviations,
                            "stand_in": os.environ.get("COMPANION_STAND_IN", ""),
                        }
                    )
                    + "\n"
                )
        if problems:
            raise RecordsMismatch(
                f"{len(problems)} record(s) of {self.slug}/{self.notebook} not reproduced:\n  " + "\n  ".join(problems)
            )

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, RecordsMismatch):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"records of {self.slug}/{self.notebook} reproduce the committed ones"


def _chapter_notebook(path: Path) -> tuple[str, str] | None:
    """(slug, notebook) when ``path`` is a chapter notebook listed in ``papers/<slug>.yaml``."""
    from . import papers, paths

    try:
        rel = path.resolve().relative_to(paths.book_dir())
    except ValueError:
        return None
    if len(rel.parts) != 2 or rel.suffix != ".ipynb" or rel.parts[0] not in papers.slugs():
        return None
    slug, name = rel.parts[0], rel.stem
    if name not in {nb.name for nb in papers.load(slug).notebooks}:
        return None
    return slug, name


def pytest_collection_modifyitems(session, config, items):
    out, previous = [], None

    def close(parent):
        found = _chapter_notebook(Path(str(parent.path)))
        if found:
            out.append(RecordsItem.from_parent(parent, name="records", slug=found[0], notebook=found[1]))

    for item in items:
        parent = item.parent if type(item).__module__.startswith("nbval") else None
        if previous is not None and parent is not previous:
            close(previous)
        out.append(item)
        previous = parent
    if previous is not None:
        close(previous)
    items[:] = out
