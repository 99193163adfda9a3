"""One table writer: LaTeX through pandas' Styler with one escaper, CSV beside it."""

import re

import numpy as np
import pandas as pd

from aicarousel import paths
from aicarousel.tables import latex_escape, to_latex, write_table


def test_escaper_handles_every_special_character_once():
    assert latex_escape(r"50% of $B_t & #1 {x} ~ ^ \ ") == (
        r"50\% of \$B\_t \& \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{} ")
    assert latex_escape("Lab -> Cloud") == r"Lab $\to$ Cloud"


def test_table_is_booktabs_with_escaped_headers_and_cells():
    df = pd.DataFrame({"origin": ["End users", "a_b"], "amount ($B)": [1.25, np.nan]})
    tex = to_latex(df, formatters={"amount ($B)": lambda v: "--" if pd.isna(v) else f"{v:.1f}"},
                   caption="Who paid, 100%", label="tab:x", position="htbp")
    lines = tex.splitlines()
    assert lines[:4] == [r"\begin{table}[htbp]", r"\centering", r"\caption{Who paid, 100\%}",
                         r"\label{tab:x}"]
    body = lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]
    assert body == [r"End users & 1.2 \\", r"a\_b & -- \\"]
    assert r"origin & amount (\$B) \\" in lines and lines[-1] == r"\end{table}"
    assert to_latex(df).startswith(r"\begin{tabular}{lr}")  # no float without caption/label


def test_write_table_writes_csv_and_tex(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.5]}, index=pd.Index(["a", "b"], name="k"))
    csv, tex = write_table(df, tmp_path / "t_2030.5", to_latex(df), float_format="%.6g")
    assert csv.name == "t_2030.5.csv" and tex.name == "t_2030.5.tex"
    assert csv.read_text() == "k,x\na,1\nb,2.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t_2030.5.csv", "t_2030.5.tex"]


def test_no_other_module_has_its_own_latex_escaper():
    """The accounts, experiments, calibration and stability tables escape through tables.py."""
    src = paths.ROOT / "src" / "aicarousel"
    for f in src.glob("*.py"):
        if f.name == "tables.py":
            continue
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"def _?(tex|latex)_?escape|def esc\(", text), f.name
