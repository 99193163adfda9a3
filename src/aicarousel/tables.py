"""Tables for papers: one LaTeX escaper, one LaTeX renderer (pandas' Styler) and one CSV + LaTeX
writer, used by the accounts, experiments and calibration tables and the stability report.

:func:`to_latex` renders a DataFrame with :meth:`pandas.io.formats.style.Styler.to_latex`
(booktabs rules; Jinja2 is in the lock): cells are formatted by per-column functions and every
text cell and header goes through :func:`latex_escape`. :func:`write_table` writes
``<stem>.csv`` and ``<stem>.tex`` atomically (:mod:`aicarousel.atomic`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .atomic import write_text

#: LaTeX's special characters and their escapes (``->`` becomes an arrow).
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "->": r"$\to$", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in sorted(LATEX_SPECIAL, key=len, reverse=True)))


def latex_escape(s: Any) -> str:
    """Escape LaTeX's special characters in one pass (``->`` becomes an arrow).

    Parameters
    ----------
    s : Any
        Text (converted with :class:`str`).

    Returns
    -------
    str
    """
    return _LATEX_RE.sub(lambda m: LATEX_SPECIAL[m.group(0)], str(s))


def to_latex(df: pd.DataFrame, *, formatters: Mapping[str, Callable[[Any], str]] | None = None,
             caption: str = "", label: str = "", environment: str | None = None,
             position: str | None = None, column_format: str | None = None,
             header: Mapping[str, str] | None = None, commands: Sequence[str] = (),
             comments: Sequence[str] = ()) -> str:
    """Render ``df`` (its columns; the index is not shown) as a booktabs LaTeX table.

    Parameters
    ----------
    df : pandas.DataFrame
        Table; column names are the header.
    formatters : mapping of str to callable, optional
        Column -> function giving the cell's LaTeX (already escaped). Columns without one are
        escaped with :func:`latex_escape` (empty for missing values).
    caption, label : str
        ``\\caption`` (escaped) and ``\\label``; either one, or ``environment``, wraps the
        tabular in a float (``table`` by default) with ``\\centering``.
    environment : str, optional
        Float environment (``"table*"``).
    position : str, optional
        Float position (``"htbp"``).
    column_format : str, optional
        Column alignment; default ``r`` for numeric columns and ``l`` for others.
    header : mapping of str to str, optional
        Column -> header cell LaTeX (already escaped); default the escaped column name.
    commands : sequence of str
        LaTeX commands placed inside the float before the tabular, e.g.
        ``["footnotesize", "setlength{\\tabcolsep}{3pt}"]`` (without the backslash).
    comments : sequence of str
        ``%`` comment lines put before everything.

    Returns
    -------
    str
        The LaTeX text, ending with a newline.
    """
    formatters = dict(formatters or {})
    header = dict(header or {})
    cols = list(df.columns)
    if column_format is None:
        column_format = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in cols)
    fmt = {c: formatters.get(c, lambda v: "" if _missing(v) else latex_escape(v)) for c in cols}
    plain = df.reset_index(drop=True)
    plain.columns = range(len(cols))  # duplicate or odd column names cannot confuse the Styler
    styler = plain.style.hide(axis="index")
    styler = styler.format({i: fmt[c] for i, c in enumerate(cols)})
    styler = styler.format_index(lambda i: header.get(cols[i], latex_escape(cols[i])), axis=1)
    styles = [{"selector": cmd.split("{")[0], "props": ":" + cmd[len(cmd.split("{")[0]):] + ";"}
              for cmd in commands]
    if styles:
        styler = styler.set_table_styles(styles, overwrite=False)
    floating = bool(caption or label or environment)
    tex = styler.to_latex(
        column_format=column_format, hrules=True,
        caption=latex_escape(caption) if caption else None, label=label or None,
        environment=(environment or "table") if floating else None,
        position=position if floating else None,
        position_float="centering" if floating else None)
    lead = "".join(f"% {c}\n" for c in comments)
    return lead + (tex if tex.endswith("\n") else tex + "\n")


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def write_table(df: pd.DataFrame, stem: str | os.PathLike, latex: str,
                **to_csv: Any) -> tuple[Path, Path]:
    """Write ``df`` as ``<stem>.csv`` and the given LaTeX as ``<stem>.tex``, each atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        Table for the CSV file.
    stem : path
        Output path without suffix.
    latex : str
        The table's LaTeX (from :func:`to_latex`).
    **to_csv
        Passed to :meth:`pandas.DataFrame.to_csv` (lines end with ``\\n``).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        CSV and LaTeX paths.
    """
    stem = Path(stem)
    csv = write_text(stem.with_name(stem.name + ".csv"),
                     df.to_csv(lineterminator="\n", **to_csv))
    tex = write_text(stem.with_name(stem.name + ".tex"), latex)
    return csv, tex
