"""Shared figure style and provenance-stamped saving for every aicarousel figure.

All figure scripts (``figures/fig_*.py``) use this module so that every figure
has the same fonts, the same colour-blind-safe palette (Okabe-Ito), a journal
width (single column 3.5 in, double column 7.2 in), units in its axis labels,
and its provenance (git commit, model hash, scenario, seed) in the file
metadata.

Typical use::

    from aicarousel import plotting
    plotting.use_style()
    fig, ax = plotting.figure("single", height=2.4)
    ax.plot(ds["time"], ds["Cloud Debt"])
    ax.set_ylabel(plotting.axis_label(ds["Cloud Debt"]))
    plotting.savefig(fig, "cloud_debt", plotting.provenance(ds, scenario="baseline"))

``savefig`` writes ``figures/out/<name>.pdf`` (vector) and ``<name>.png``
(300 dpi). Both are deterministic: saving the same figure twice gives
byte-identical files (no creation dates in the PDF, fixed PNG text chunks).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

#: Single-column figure width (inches).
SINGLE = 3.5
#: Double-column figure width (inches).
DOUBLE = 7.2
#: Raster resolution of the PNG copies (dots per inch).
DPI = 300

#: Okabe-Ito colour-blind-safe palette, by colour name.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#999999",
}
#: The palette as an ordered list (the default colour cycle of the style file).
PALETTE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow", "black")]

#: One fixed colour per sector and Rest-of-World counterparty, used by all figures.
SECTOR_COLORS = {
    "Lab": OKABE_ITO["blue"],
    "Cloud": OKABE_ITO["orange"],
    "Chips": OKABE_ITO["green"],
    "End users": OKABE_ITO["sky"],
    "Equity investors": OKABE_ITO["purple"],
    "Lenders": OKABE_ITO["vermillion"],
    "Cloud customers": OKABE_ITO["yellow"],
    "Chip buyers": OKABE_ITO["black"],
    "Suppliers": OKABE_ITO["grey"],
}

_STYLE_NAME = "aicarousel.mplstyle"
_UNIT_DISPLAY = {"Dmnl": "dimensionless", "dmnl": "dimensionless", "": ""}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def style_file() -> Path:
    """Path of the shared matplotlib style file (``figures/aicarousel.mplstyle``).

    Returns
    -------
    pathlib.Path
        Absolute path of the style file.
    """
    from aicarousel import paths

    return Path(paths.FIGURES_DIR) / _STYLE_NAME


def use_style() -> None:
    """Apply the shared style (fonts, sizes, palette, 300 dpi) to matplotlib.

    Raises
    ------
    FileNotFoundError
        If the style file is missing from ``figures/``.
    """
    path = style_file()
    if not path.is_file():
        raise FileNotFoundError(
            f"figure style file {path.name} not found in {path.parent.name}/: restore "
            "figures/aicarousel.mplstyle from git"
        )
    plt.style.use(str(path))


def figure(width: str | float = "single", height: float | None = None, nrows: int = 1,
           ncols: int = 1, **kwargs: Any):
    """Create a figure of journal width with the shared style applied.

    Parameters
    ----------
    width : {"single", "double"} or float
        ``"single"`` (3.5 in), ``"double"`` (7.2 in), or a width in inches.
    height : float, optional
        Height in inches; default 2.4 in per panel row, capped at 9 in.
    nrows, ncols : int
        Panel grid passed to :func:`matplotlib.pyplot.subplots`.
    **kwargs
        Passed to :func:`matplotlib.pyplot.subplots` (e.g. ``sharex=True``).

    Returns
    -------
    (matplotlib.figure.Figure, axes)
        As returned by :func:`matplotlib.pyplot.subplots`.
    """
    use_style()
    w = {"single": SINGLE, "double": DOUBLE}.get(width, width) if isinstance(width, str) else width
    if isinstance(w, str):
        raise ValueError(f"figure width {width!r} unknown: use 'single', 'double' or inches")
    if height is None:
        height = min(9.0, 2.4 * nrows)
    return plt.subplots(nrows, ncols, figsize=(float(w), float(height)), **kwargs)


def format_unit(unit: str | None) -> str:
    """Return a display form of a Vensim unit string.

    Parameters
    ----------
    unit : str or None
        Vensim unit, e.g. ``"$B/Year"``, ``"GW"``, ``"Dmnl"``.

    Returns
    -------
    str
        ``"$B/year"``, ``"GW"``, ``"dimensionless"``; ``""`` when unknown. Dollar
        signs are escaped so matplotlib does not read them as mathtext.
    """
    if unit is None:
        return ""
    unit = str(unit).strip()
    if unit in _UNIT_DISPLAY:
        return _UNIT_DISPLAY[unit]
    unit = re.sub(r"\bYears?\b", "year", unit)
    return unit.replace("$", r"\$")


def axis_label(obj: Any = None, name: str | None = None, unit: str | None = None) -> str:
    """Format an axis label ``"Name (unit)"`` from a DataArray's attrs or explicit text.

    Parameters
    ----------
    obj : xarray.DataArray, optional
        Variable whose ``name`` and ``attrs["units"]`` are used.
    name : str, optional
        Overrides the variable name in the label.
    unit : str, optional
        Overrides the unit (Vensim unit string).

    Returns
    -------
    str
        e.g. ``"Cloud Debt (\\$B)"``; a dimensionless quantity gets ``"(dimensionless)"``.

    Raises
    ------
    ValueError
        If neither a name nor a unit can be found: every axis must carry its unit.
    """
    attrs = getattr(obj, "attrs", {}) or {}
    label = name if name is not None else (getattr(obj, "name", None) or attrs.get("real_name"))
    u = unit if unit is not None else attrs.get("units_vensim", attrs.get("units", attrs.get("Units")))
    if label is None:
        raise ValueError("axis_label needs a DataArray with a name or an explicit name=")
    if u is None:
        raise ValueError(
            f"no unit for axis label {label!r}: pass unit= or use a Dataset from aicarousel.model.run"
        )
    shown = format_unit(u)
    return f"{label} ({shown})" if shown else str(label)


def git_commit(short: bool = False) -> str:
    """Current git commit of the project, with ``-dirty`` when tracked files changed.

    Parameters
    ----------
    short : bool
        Return the abbreviated hash.

    Returns
    -------
    str
        Commit hash, or ``"unknown"`` outside a git checkout.
    """
    from aicarousel.provenance import git_state  # the one git-state reader

    commit, dirty = git_state()
    if commit == "unknown":
        return "unknown"
    return (commit[:12] if short else commit) + ("-dirty" if dirty == "true" else "")


def provenance(ds: Any = None, scenario: str | None = None, seed: int | None = None,
               **extra: Any) -> dict[str, str]:
    """Build the provenance dict a figure records in its metadata.

    Parameters
    ----------
    ds : xarray.Dataset or mapping, optional
        Results the figure was drawn from (or their attrs); its flat provenance attributes
        (:func:`aicarousel.provenance.provenance`) supply ``model_hash`` and, if present,
        ``scenario`` and ``seed``.
    scenario : str, optional
        Scenario name(s) shown (comma-separated for several).
    seed : int, optional
        Random seed of sampled results.
    **extra
        Further string-convertible fields (e.g. ``source="results/experiments.nc"``).

    Returns
    -------
    dict of str to str
        Always holds ``git_commit``, ``model_hash``, ``scenario`` and ``seed``
        (``"none"`` when not applicable).
    """
    info: dict[str, Any] = {}
    if isinstance(ds, Mapping) and not hasattr(ds, "attrs"):  # plain attrs of a results file
        ds = type("_Attrs", (), {"attrs": dict(ds)})()
    if ds is not None:  # results carry their provenance as flat attributes
        for key in ("model_hash", "scenario", "seed"):
            if key in getattr(ds, "attrs", {}):
                info.setdefault(key, ds.attrs[key])
    out = {
        "git_commit": git_commit(),
        "model_hash": str(info.get("model_hash") or "none"),
        "scenario": str(scenario if scenario is not None else info.get("scenario", "none")),
        "seed": str(seed if seed is not None else (info.get("seed") or "none")),
    }
    for key, value in extra.items():
        out[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return out


def out_dir() -> Path:
    """Directory figures are written to (``figures/out``), created if needed."""
    from aicarousel import paths

    d = Path(paths.FIGURES_OUT)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _atomic_save(fig, path: Path, **kwargs: Any) -> None:
    from aicarousel.atomic import write_with

    fmt = kwargs.pop("format", None) or path.suffix.lstrip(".")
    write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))


def savefig(fig, name: str, provenance: Mapping[str, Any], directory: str | os.PathLike | None = None,
            close: bool = True) -> tuple[Path, Path]:
    """Save ``fig`` as ``<name>.pdf`` (vector) and ``<name>.png`` (300 dpi) with provenance.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Figure to save; its size is kept exactly (no tight bounding box), so a
        3.5 in wide figure gives a 1050 px wide PNG.
    name : str
        File stem, letters, digits, ``_``, ``-`` and ``.`` only (e.g. ``"baseline_dashboard"``).
    provenance : mapping
        At least ``git_commit``, ``model_hash``, ``scenario`` and ``seed`` (see
        :func:`provenance`); stored as PDF Subject (JSON) and Keywords, and as
        PNG text chunks (one per key plus ``Provenance`` JSON).
    directory : path, optional
        Output directory; default ``figures/out``.
    close : bool
        Close the figure after saving (frees memory in batch builds).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        Paths of the PDF and the PNG.

    Raises
    ------
    ValueError
        If ``name`` is not a plain file stem or provenance lacks a required key.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"figure name {name!r} invalid: use letters, digits, '_', '-', '.' only")
    missing = [k for k in ("git_commit", "model_hash", "scenario", "seed") if k not in provenance]
    if missing:
        raise ValueError(
            f"provenance for figure {name!r} lacks {', '.join(missing)}: build it with "
            "aicarousel.plotting.provenance(...)"
        )
    prov = {str(k): str(v) for k, v in provenance.items()}
    width = fig.get_figwidth()
    if min(abs(width - SINGLE), abs(width - DOUBLE)) > 1e-6:
        warnings.warn(
            f"figure {name!r} is {width:.2f} in wide; journals want {SINGLE} (single) or {DOUBLE} (double)",
            stacklevel=2,
        )
    d = Path(directory) if directory is not None else out_dir()
    d.mkdir(parents=True, exist_ok=True)
    subject = json.dumps(prov, sort_keys=True)
    keywords = "; ".join(f"{k}={prov[k]}" for k in sorted(prov))
    pdf_meta = {
        "Title": name,
        "Author": "aicarousel",
        "Subject": subject,
        "Keywords": keywords,
        "Creator": "aicarousel.plotting",
        "Producer": "matplotlib",
        "CreationDate": None,
        "ModDate": None,
    }
    png_meta = {"Title": name, "Author": "aicarousel", "Software": "aicarousel.plotting / matplotlib",
                "Provenance": subject}
    png_meta.update({k: v for k, v in prov.items() if k not in png_meta})
    pdf_path, png_path = d / f"{name}.pdf", d / f"{name}.png"
    _atomic_save(fig, pdf_path, format="pdf", metadata=pdf_meta)
    _atomic_save(fig, png_path, format="png", dpi=DPI, metadata=png_meta)
    if close:
        plt.close(fig)
    return pdf_path, png_path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Read the provenance written by :func:`savefig` back from a PDF or PNG.

    Parameters
    ----------
    path : path
        A ``.pdf`` or ``.png`` file written by :func:`savefig`.

    Returns
    -------
    dict of str to str
        The provenance fields (``git_commit``, ``model_hash``, ``scenario``, ``seed``, ...).
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            text = dict(getattr(im, "text", {}) or im.info)
        return json.loads(text.get("Provenance", "{}"))
    data = path.read_bytes()
    m = re.search(rb"/Subject \((.*?)(?<!\\)\)", data, re.S)
    if not m:
        return {}
    raw = m.group(1).replace(rb"\(", b"(").replace(rb"\)", b")").replace(rb"\\", b"\\")
    return json.loads(raw.decode("latin-1"))


def script_dirs(argv: list[str] | None = None, description: str = "") -> tuple[Path, Path]:
    """Parse the two options every figure script takes.

    ``--results DIR`` (where to read results; default ``results/``) and ``--out DIR``
    (where to write the figure; default ``figures/out/``), so tests can build a
    figure from small data into a temporary directory.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    description : str
        Help text of the script.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        Results directory and output directory.
    """
    import argparse

    from aicarousel import paths

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--results", default=None, metavar="DIR", help="results directory (default results/)")
    ap.add_argument("--out", default=None, metavar="DIR", help="output directory (default figures/out/)")
    args = ap.parse_args(argv)
    results = Path(args.results) if args.results else Path(paths.RESULTS_DIR)
    out = Path(args.out) if args.out else out_dir()
    return results, out


def require(path: str | os.PathLike, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise a clear error naming the step that makes it.

    Parameters
    ----------
    path : path
        Result file a figure needs.
    made_by : str
        Command that produces it (e.g. ``"python analysis/experiments.py"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    aicarousel.errors.MissingResultsError
        When the file is missing (a :class:`FileNotFoundError` too).
    """
    from aicarousel.errors import MissingResultsError

    p = Path(path)
    if not p.is_file():
        raise MissingResultsError(f"{p.name} not found in {p.parent}: run `{made_by}` "
                                  "(or `make figures`) first")
    return p


def run_script(main, argv: list[str] | None = None) -> int:
    """Run a figure script's ``main(argv)`` the way every script's ``__main__`` block does.

    The contract of ``figures/fig_*.py``: ``main(argv=None) -> int`` reads ``--results`` and
    ``--out`` with :func:`script_dirs`, finds its inputs with :func:`require` and writes with
    :func:`savefig` into the output directory. An :class:`~aicarousel.errors.AicarouselError`
    (missing results among them) becomes one line on stderr and exit status 2.

    Parameters
    ----------
    main : callable
        The script's ``main``.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    import sys

    from aicarousel.errors import AicarouselError

    try:
        return main(argv)
    except AicarouselError as exc:
        name = Path(main.__code__.co_filename).stem
        print(f"{name}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def panel(ax, ds, variables: Mapping[str, str] | list[str], quantity: str,
          colors: Mapping[str, str] | list[str] | None = None, logy: bool = False,
          legend: bool = True, time_dim: str = "time", **line_kw: Any):
    """Plot several variables of one unit against time on one axis.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    ds : xarray.Dataset
        One run (dimension ``time``); variable attrs carry ``units``.
    variables : list of str or mapping
        Vensim names, or ``{Vensim name: legend label}``.
    quantity : str
        What the y axis shows, e.g. ``"Market value"``; the unit is appended from
        the variables' attrs.
    colors : list or mapping, optional
        Line colours (default: the palette in order).
    logy : bool
        Logarithmic y axis.
    legend : bool
        Draw a legend when there is more than one line.
    time_dim : str
        Name of the time coordinate.
    **line_kw
        Passed to :meth:`matplotlib.axes.Axes.plot`.

    Returns
    -------
    list of matplotlib.lines.Line2D

    Raises
    ------
    ValueError
        If the variables do not share one unit (an axis has one unit).
    """
    labels = dict(variables) if isinstance(variables, Mapping) else {v: v for v in variables}
    units = {str(ds[v].attrs.get("units_vensim", ds[v].attrs.get("units", ""))) for v in labels}
    if len(units) != 1:
        raise ValueError(f"variables {list(labels)} have different units {sorted(units)}: one axis, one unit")
    if colors is None:
        colors = PALETTE
    lines = []
    t = ds[time_dim].values
    for i, (v, lab) in enumerate(labels.items()):
        c = colors[v] if isinstance(colors, Mapping) else colors[i % len(colors)]
        lines += ax.plot(t, ds[v].values, color=c, label=lab, **line_kw)
    ax.set_ylabel(axis_label(name=quantity, unit=units.pop()))
    if logy:
        ax.set_yscale("log")
    if legend and len(labels) > 1:
        ax.legend(loc="best")
    return lines


def panel_letters(axes, x: float = -0.02, y: float = 1.02) -> None:
    """Label panels (a), (b), ... at their top-left corner.

    Parameters
    ----------
    axes : iterable of matplotlib.axes.Axes
    x, y : float
        Position in axes coordinates.
    """
    for i, ax in enumerate(list(axes)):
        ax.text(x, y, f"({chr(97 + i)})", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=8, fontweight="bold")


def label_points(ax, x, y, labels, fontsize: float = 5.0) -> list:
    """Label scatter points without labels overlapping each other or leaving the axes.

    Labels are placed in the order given (most important first): beside the point, and if that
    box collides with a label already placed, nudged up or down in steps of one text line; near
    the right edge a label goes to the left of its point. Call after the layout is final (the
    placement uses display coordinates).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x, y : sequence of float
        Point coordinates, in data units.
    labels : sequence of str
    fontsize : float
        Points.

    Returns
    -------
    list of matplotlib.text.Annotation
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    placed, texts = [], []
    step = fontsize * 1.25
    for xi, yi, lab in zip(x, y, labels):
        best = None
        for k in (0, 1, -1, 2, -2, 3, -3, 4, -4):
            for side in ("right", "left"):
                dx = 2 if side == "right" else -2
                t = ax.annotate(str(lab), (xi, yi), xytext=(dx, 2 + k * step),
                                textcoords="offset points", fontsize=fontsize,
                                ha="left" if side == "right" else "right", va="bottom")
                bb = t.get_window_extent(renderer)
                inside = bb.x1 <= axes_box.x1 + 1 and bb.x0 >= axes_box.x0 - 1
                clash = any(bb.overlaps(p) for p in placed)
                if inside and not clash:
                    best = (t, bb)
                    break
                t.remove()
            if best:
                break
        if best is None:  # crowded: keep the plain placement rather than drop the label
            t = ax.annotate(str(lab), (xi, yi), xytext=(2, 2), textcoords="offset points",
                            fontsize=fontsize)
            best = (t, t.get_window_extent(renderer))
        texts.append(best[0])
        placed.append(best[1])
    return texts


def year_axis(ax, step: int = 2) -> None:
    """Whole-year ticks every ``step`` years on the x axis (no ``2027.5``).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    step : int
        Years between labelled ticks.
    """
    from matplotlib.ticker import FormatStrFormatter, MultipleLocator

    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_minor_locator(MultipleLocator(1))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))


def legend(ax, **kwargs: Any):
    """Legend with a light frame so it stays readable over lines.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.legend` (default ``loc="best"``, fontsize 6).

    Returns
    -------
    matplotlib.legend.Legend
    """
    opts = dict(loc="best", fontsize=6, frameon=True, framealpha=0.85, edgecolor="none",
                facecolor="white", borderpad=0.3, handlelength=1.4)
    opts.update(kwargs)
    return ax.legend(**opts)
