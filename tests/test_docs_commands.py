"""Every command the README and the book show runs as written: each is extracted from the code blocks and
dry-run (``companion run ... --dry-run`` validates without executing; papermill parameters are checked
against the notebook as papermill would inject them; make targets with ``make -n``)."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from companion import cli, notebooks, papers, paths, runner

ROOT = paths.project_root()
PREFIXES = (".venv/bin/companion ", "companion ", "papermill ", "make ")


def _documents():
    yield ROOT / "README.md", (ROOT / "README.md").read_text()
    for md in sorted(paths.book_dir().rglob("*.md")):
        if "_build" not in md.parts:
            yield md, md.read_text()
    for nb_path in sorted(paths.book_dir().rglob("*.ipynb")):
        if "_build" not in nb_path.parts and ".ipynb_checkpoints" not in nb_path.parts:
            cells = notebooks.read(nb_path).cells
            yield nb_path, "\n".join(c.source for c in cells if c.cell_type == "markdown")


def shown_commands() -> list[tuple[str, str]]:
    """(where, command) for every shell line in a fenced code block of the README and the book."""
    found = []
    for path, text in _documents():
        for block in re.findall(r"```(?:bash|console|sh|shell)?\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                command = line.split(" # ")[0].strip().removeprefix("$ ")
                if command.startswith(PREFIXES):
                    found.append((str(path.relative_to(ROOT)), command))
    return found


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10 and any("papermill" in c for _, c in COMMANDS)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A data root holding every file a ``paper`` profile requires (empty files: only presence is checked)."""
    root = tmp_path_factory.mktemp("data")
    for slug in papers.slugs():
        for nb in papers.load(slug).notebooks:
            for rel in nb.requires.get("paper", []):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).touch()
    return root


def _papermill(args: list[str]) -> None:
    from papermill.cli import _resolve_type
    from papermill.cli import papermill as command

    ctx = command.make_context("papermill", args)
    nb_path = (ROOT / ctx.params["notebook_path"]).resolve()
    slug, name = nb_path.parent.name, nb_path.stem
    nb = papers.load(slug).notebook(name)
    injected = {k: _resolve_type(v) for k, v in ctx.params.get("parameters") or ()}
    injected.update({k: v for k, v in ctx.params.get("parameters_raw") or ()})
    import yaml

    for text in ctx.params.get("parameters_yaml") or ():
        injected.update(yaml.safe_load(text))
    runner.check_injected(nb, injected)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c}" for w, c in COMMANDS])
def test_shown_command_runs_as_written(where, command, data_root):
    words = [str(data_root) if w in ("DIR", "~/data") else w for w in shlex.split(command)]
    if words[0].endswith("companion"):
        args = words[1:]
        if args[0] == "run":
            assert cli.main([*args, "--dry-run"]) == 0, command
        elif args[0] in ("list", "claims"):
            assert cli.main(args) == 0, command
        else:  # bench, build, kernel: heavy or installing; check that they parse as written
            cli._parser().parse_args(args)
    elif words[0] == "papermill":
        _papermill(words[1:])
    else:
        out = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        variables = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if "run" in words[1:]:
            assert (
                cli.main(
                    ["run", variables.get("CHAPTER", "sfw"), "--profile", variables.get("PROFILE", "book"), "--dry-run"]
                )
                == 0
            ), command


def test_papermill_check_rejects_what_papermill_would_break(tmp_path):
    nb = papers.load("sfw").notebook("04-accuracy")
    with pytest.raises(runner.RunError, match="papermill would inject '\\[0, 1\\]' \\(str\\)"):
        runner.check_injected(nb, {"seeds": "[0, 1]"})
    with pytest.raises(runner.RunError, match="'bogus' is not a choice"):
        runner.check_injected(nb, {"model_name": "bogus"})
    runner.check_injected(nb, {"seeds": 2, "lr_sgd": 1})
