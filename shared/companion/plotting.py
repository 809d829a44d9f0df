"""One house style for every figure and table of the book: seaborn theme, one colour per method, fixed sizes,
figures at twice the pixel density of the screen they are shown on, tables as HTML."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns

# One colour per method across all chapters, so "SGD" looks the same everywhere.
METHOD_COLORS: dict[str, str] = {
    "sgd": "#4d4d4d",
    "sgd+wd": "#000000",
    "adam": "#8c564b",
    "sfw": "#6baed6",
    "sfw-l1": "#d62728",
    "sfw-l2": "#1f77b4",
    "sfw-lp": "#17becf",
    "sfw-linf": "#9467bd",
    "sfw-ksparse": "#ff7f0e",
    "sfw-knorm": "#2ca02c",
    "sfw+momentum": "#08306b",
    "svrf": "#e377c2",
    "spider-fw": "#bcbd22",
    "orgfw": "#7f7f7f",
    # retraining schedules and pruning methods (imp-retraining and the chapters reusing companion.pruning)
    "ft": "#7f7f7f",
    "lrw": "#bcbd22",
    "slr": "#17becf",
    "clr": "#9467bd",
    "llr": "#1f77b4",
    "allr": "#d62728",
    "imp": "#1f77b4",
    "bimp": "#d62728",
    "gmp": "#2ca02c",
    "dpf": "#ff7f0e",
    "gsm": "#8c564b",
    "lc": "#e377c2",
    "dnw": "#17becf",
    "str": "#9467bd",
    "dst": "#bcbd22",
    "cs": "#7f7f7f",
    "global": "#d62728",
    "uniform": "#7f7f7f",
    "uniform+": "#8c564b",
    "erk": "#2ca02c",
    "lamp": "#1f77b4",
    "random": "#bcbd22",
}
# Widths fit the book's column (about 700 px at the house figure.dpi of 100), so text in a figure is shown at its size.
SIZES = {"single": (5.0, 3.4), "wide": (7.0, 3.0), "square": (4.2, 4.2), "grid": (7.0, 5.0)}
DIVERGING = "RdYlGn"  # red = negative, green = positive, as in the Frank-Wolfe papers' weight images


def use_house_style() -> None:
    """Apply the book's matplotlib/seaborn style (call once per notebook, in the setup cell). In a notebook,
    figures are also embedded as "retina" PNGs: twice the pixels, shown at the same size, so lines and labels
    stay sharp on high-density screens and when the book is zoomed."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95)
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "figure.autolayout": False,
            "axes.titlesize": "medium",
            "axes.titleweight": "bold",
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "viridis",
        }
    )
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - plain Python without IPython
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


class Table:
    """A table for readers and for the tests: HTML in the book (numbers formatted, no index unless it means
    something), and as ``text/plain`` exactly the text ``DataFrame.to_string`` prints, so a cell checked by
    nbval (``# NBVAL_CHECK_OUTPUT``) compares the same characters it compared when the table was printed.

    ``formats`` maps column names to format strings or callables (``{"acc": "{:.2f}"}``); ``caption`` is shown
    above the table.
    """

    def __init__(self, frame, index: bool = True, formats: dict | None = None, caption: str = "", na_rep: str = "-"):
        self.frame, self.index, self.formats, self.caption, self.na_rep = frame, index, formats or {}, caption, na_rep

    def _formatted(self):
        out = self.frame.copy()
        if not hasattr(out, "columns"):  # a Series: shown as one column, printed as Series.to_string prints it
            return out
        for col, fmt in self.formats.items():
            fn = fmt.format if isinstance(fmt, str) else fmt
            out[col] = [self.na_rep if v is None or (isinstance(v, float) and v != v) else fn(v) for v in out[col]]
        return out

    def __repr__(self) -> str:
        text = self._formatted().to_string(index=self.index, na_rep=self.na_rep)
        return f"{self.caption}\n{text}" if self.caption else text

    def _repr_html_(self) -> str:
        import html

        shown = self._formatted()
        if not hasattr(shown, "columns"):
            shown = shown.to_frame()
        body = shown.to_html(
            index=self.index, na_rep=self.na_rep, border=0, classes="companion-table", float_format=lambda x: f"{x:.6g}"
        )
        cap = (
            f"<p style='font-size:0.9em;color:#57606a;margin-bottom:0.3em'>{html.escape(self.caption)}</p>"
            if self.caption
            else ""
        )
        return f"{cap}<div style='overflow-x:auto'>{body}</div>"


def table(frame, index: bool = True, formats: dict | None = None, caption: str = "", na_rep: str = "-") -> Table:
    """Show ``frame`` as a :class:`Table` (make it the cell's last expression)."""
    return Table(frame, index=index, formats=formats, caption=caption, na_rep=na_rep)


def color(method: str) -> str:
    """The colour of ``method`` (case-insensitive); unknown methods get a stable colour from the palette."""
    key = method.lower()
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    palette = sns.color_palette("colorblind", 10).as_hex()
    return palette[sum(map(ord, key)) % len(palette)]


def figure(size: str = "single", nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` with one of the house sizes (``single``, ``wide``, ``square``, ``grid``)."""
    kwargs.setdefault("constrained_layout", True)
    return plt.subplots(nrows, ncols, figsize=SIZES[size], **kwargs)


def save(fig, path: str | Path) -> Path:
    """Save ``fig`` (PNG or PDF by suffix) creating folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
