"""Reading notebooks: the ``parameters`` cell (papermill's convention) and a hash of the code cells."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

import nbformat


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The code cell tagged ``parameters``; ``ValueError`` when there is none."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    raise ValueError("notebook has no code cell tagged 'parameters'")


def default_parameters(nb_or_path: nbformat.NotebookNode | Path) -> dict[str, Any]:
    """The literal defaults of the ``parameters`` cell, in order: ``{name: value}``.

    Only plain assignments of literals are allowed there (that is what makes them overridable from a
    profile or the command line); anything else raises ``ValueError``.
    """
    nb = read(nb_or_path) if isinstance(nb_or_path, Path) else nb_or_path
    tree = ast.parse(parameters_cell(nb).source)
    params: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"parameters cell may only hold `name = literal` lines, found: {ast.unparse(node)}")
        try:
            params[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ValueError(f"parameter {node.targets[0].id} is not a literal: {ast.unparse(node.value)}") from exc
    return params


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of the notebook's own code and markdown (outputs, metadata and papermill's injected cell
    excluded), so re-executing a notebook does not change it."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        h.update(cell.cell_type.encode())
        h.update(b"\0")
        h.update(cell.source.encode())
        h.update(b"\0")
    return h.hexdigest()
