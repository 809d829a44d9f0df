"""``papers/<slug>.yaml``: one file per publication with its notebooks, profiles and claims.

A claim pairs the paper's value (text) with an expression over recorded results (``values`` maps names to
``"notebook:key"``), an ``ours`` expression to display and a ``check`` that must hold at the ``book``
profile unless the claim's ``status`` says honestly why it cannot (``gpu-only`` / ``not-reproduced``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import paths, results

PROFILES = ("smoke", "book", "gpu", "paper")
STATUSES = ("checked", "gpu-only", "not-reproduced")

_param_map = {"type": "object", "additionalProperties": True}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["slug", "title", "bibkey", "venue", "notebooks", "claims"],
    "additionalProperties": False,
    "properties": {
        "slug": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "title": {"type": "string"},
        "bibkey": {"type": "string"},
        "venue": {"type": "string"},
        "notebooks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "title"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[0-9]{2}-[a-z0-9-]+$"},
                    "title": {"type": "string"},
                    "profiles": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {p: _param_map for p in PROFILES},
                    },
                    "requires": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {p: {"type": "array", "items": {"type": "string"}} for p in PROFILES},
                    },
                    "choices": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1}},
                    "tolerances": {
                        "type": "object",
                        "additionalProperties": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
                    },
                    "tolerance_note": {"type": "string"},
                },
            },
        },
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "claim", "where", "paper", "values", "ours", "check", "status"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                    "claim": {"type": "string"},
                    "where": {"type": "string"},
                    "paper": {"type": "string"},
                    "values": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": "string", "pattern": "^[0-9]{2}-[a-z0-9-]+:.+$"},
                    },
                    "ours": {"type": "string"},
                    "check": {"type": "string"},
                    "status": {"enum": list(STATUSES)},
                    "reason": {"type": "string"},
                    "explain": {"type": "string"},
                    "unit": {"type": "string"},
                },
                "if": {"properties": {"status": {"not": {"const": "checked"}}}},
                "then": {"required": ["reason"]},
            },
        },
    },
}


class PaperError(ValueError):
    """A ``papers/<slug>.yaml`` that does not follow the schema or does not match its notebooks."""


@dataclass(frozen=True)
class Notebook:
    """One notebook of a chapter as ``papers/<slug>.yaml`` declares it.

    ``choices``: the accepted values of parameters that take one of a fixed set (for a list parameter, of
    each item). ``tolerances``: how far a re-executed record may be from the committed one (absolute, by
    glob pattern over record keys, first match wins; ``null``: not compared, e.g. a wall-clock time); keys
    that match no pattern must be equal. ``tolerance_note`` says how the tolerances were sized.
    """

    slug: str
    name: str
    title: str
    profiles: dict[str, dict[str, Any]]
    requires: dict[str, list[str]]
    choices: dict[str, list[Any]] = field(default_factory=dict)
    tolerances: dict[str, float | None] = field(default_factory=dict)
    tolerance_note: str = ""

    @property
    def path(self) -> Path:
        return paths.book_dir() / self.slug / f"{self.name}.ipynb"

    def overrides(self, profile: str) -> dict[str, Any]:
        """Parameters that differ from the notebook defaults at ``profile`` (``book`` has none)."""
        return dict(self.profiles.get(profile) or {})


@dataclass(frozen=True)
class Claim:
    slug: str
    id: str
    claim: str
    where: str
    paper: str
    values: dict[str, str]
    ours: str
    check: str
    status: str
    reason: str = ""
    explain: str = ""  # the check in words, for readers (the scoreboard shows the expression where it is empty)
    unit: str = ""  # the unit of ``ours`` (e.g. "%", "s")


@dataclass(frozen=True)
class Paper:
    slug: str
    title: str
    bibkey: str
    venue: str
    notebooks: tuple[Notebook, ...]
    claims: tuple[Claim, ...] = field(default_factory=tuple)

    def notebook(self, name: str) -> Notebook:
        for nb in self.notebooks:
            if nb.name == name:
                return nb
        raise KeyError(
            f"chapter {self.slug!r} has no notebook {name!r}; it has: " + ", ".join(n.name for n in self.notebooks)
        )


def slugs() -> list[str]:
    """Every chapter that has a ``papers/<slug>.yaml``, sorted."""
    return sorted(p.stem for p in paths.papers_dir().glob("*.yaml"))


def load(slug: str) -> Paper:
    """Load and validate ``papers/<slug>.yaml``; ``PaperError`` with one readable line on failure."""
    path = paths.papers_dir() / f"{slug}.yaml"
    if not path.exists():
        raise PaperError(f"unknown chapter {slug!r}; known chapters: {', '.join(slugs()) or '(none)'}")
    return _load(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _load(path: Path, _mtime: int) -> Paper:
    data = yaml.safe_load(path.read_text())
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise PaperError(f"{path.name}: {where}: {exc.message}") from None
    if data["slug"] != path.stem:
        raise PaperError(f"{path.name}: slug {data['slug']!r} does not match the file name")
    notebooks = tuple(
        Notebook(
            data["slug"],
            n["name"],
            n["title"],
            n.get("profiles") or {},
            n.get("requires") or {},
            n.get("choices") or {},
            n.get("tolerances") or {},
            n.get("tolerance_note", ""),
        )
        for n in data["notebooks"]
    )
    for nb in notebooks:
        if nb.profiles.get("book"):
            raise PaperError(
                f"{path.name}: notebook {nb.name}: the book profile is the notebook's defaults; "
                "change the parameters cell instead of overriding it"
            )
    names = {n.name for n in notebooks}
    claims = []
    for c in data["claims"]:
        for ref in c["values"].values():
            if ref.split(":", 1)[0] not in names:
                raise PaperError(f"{path.name}: claim {c['id']}: value {ref!r} names an unknown notebook")
        claims.append(Claim(slug=data["slug"], **c))
    ids = [c.id for c in claims]
    if len(ids) != len(set(ids)):
        raise PaperError(f"{path.name}: duplicate claim ids")
    return Paper(data["slug"], data["title"], data["bibkey"], data["venue"], notebooks, tuple(claims))


# -- claims ----------------------------------------------------------------------------------------


def _mean(xs):
    return statistics.fmean(xs)


def _std(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


SAFE_FUNCTIONS = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "len": len,
    "sum": sum,
    "all": all,
    "any": any,
    "zip": zip,
    "mean": _mean,
    "std": _std,
    "sorted": sorted,
    "math": math,
}


def safe_eval(expr: str, names: dict[str, Any]) -> Any:
    """Evaluate a claim expression with only ``names`` and :data:`SAFE_FUNCTIONS` in scope (as globals, so
    that comprehensions inside the expression see them too)."""
    return eval(compile(expr, "<claim>", "eval"), {"__builtins__": {}, **SAFE_FUNCTIONS, **names})


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    profile: str
    ours: Any  # the evaluated ``ours`` expression, or None when results are missing
    holds: bool | None  # None: not evaluated (missing results)
    note: str = ""

    @property
    def label(self) -> str:
        """What the scoreboard prints: ``holds`` / ``fails`` / ``no result`` (plus the status if not checked)."""
        base = {True: "holds", False: "fails", None: "no result"}[self.holds]
        return base if self.claim.status == "checked" else f"{base} ({self.claim.status})"


def evaluate(claim: Claim, profile: str = "book", root: Path | None = None) -> Verdict:
    """Evaluate one claim on the recorded results of ``profile``."""
    names: dict[str, Any] = {}
    for name, ref in claim.values.items():
        notebook, key = ref.split(":", 1)
        recorded = results.load(claim.slug, notebook, profile, root)
        if key not in recorded:
            return Verdict(claim, profile, None, None, f"{notebook}.{profile} has no record {key!r}")
        names[name] = recorded[key]
    try:
        ours = safe_eval(claim.ours, names)
        holds = bool(safe_eval(claim.check, names))
    except Exception as exc:  # a broken expression is a failing claim, with the reason shown
        return Verdict(claim, profile, None, False, f"{type(exc).__name__}: {exc}")
    return Verdict(claim, profile, ours, holds)


def evaluate_all(slug: str | None = None, profile: str = "book") -> list[Verdict]:
    """Verdicts for every claim of ``slug`` (or of every chapter)."""
    chosen = [slug] if slug else slugs()
    return [evaluate(c, profile) for s in chosen for c in load(s).claims]


def format_value(value: Any, digits: int = 3) -> str:
    """Short display of a claim value: floats rounded, lists of floats rounded element-wise."""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{round(value, digits)}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v, digits) for v in value) + "]"
    if value is None:
        return "-"
    return str(value)


def scoreboard(slug: str | None = None, profile: str = "book"):
    """A ``pandas.DataFrame`` of all claims: chapter, id, where, paper value, our value, verdict."""
    import pandas as pd

    rows = [
        {
            "chapter": v.claim.slug,
            "claim": v.claim.id,
            "where": v.claim.where,
            "paper": v.claim.paper,
            "ours": format_value(v.ours),
            "verdict": v.label,
        }
        for v in evaluate_all(slug, profile)
    ]
    return pd.DataFrame(rows, columns=["chapter", "claim", "where", "paper", "ours", "verdict"])
