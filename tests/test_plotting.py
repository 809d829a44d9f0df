"""The house table: HTML for readers, the exact ``to_string`` text for nbval."""

from __future__ import annotations

import pandas as pd
from companion import plotting


def test_table_text_is_what_to_string_prints_and_html_is_a_table():
    frame = pd.DataFrame({"d": [0.41834, 26.25], "n": [3, 4], "name": ["a", "b"]})
    t = plotting.table(frame, index=False)
    assert repr(t) == frame.to_string(index=False)
    html = t._repr_html_()
    assert html.count("<tr") == 3 and "0.41834" in html and "26.25" in html


def test_table_formats_columns_and_shows_its_caption():
    frame = pd.DataFrame({"acc": [97.123, float("nan")], "std": [0.25, 0.5]})
    t = plotting.table(frame, formats={"acc": "{:.1f}"}, caption="test accuracy (%)")
    text = repr(t)
    assert text.startswith("test accuracy (%)\n") and "97.1" in text and "97.12" not in text and "-" in text
    assert "test accuracy (%)" in t._repr_html_()
