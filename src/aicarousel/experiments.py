"""Policy and stress experiments: run scenarios, compare the outcomes a paper quotes.

:func:`run_experiments` validates every requested scenario first
(:func:`aicarousel.scenarios.validate_all`), runs each through
:func:`aicarousel.model.run` at the model's TIME STEP (so cumulative flows are
exact Euler sums, equal to the change of the stocks they feed), and returns

- one :class:`xarray.Dataset` with dimensions ``scenario`` x ``time`` (stored at
  the model's SAVEPER), written atomically to ``results/experiments.nc``;
- a comparison table (one row per scenario, units in the column names),
  written to ``results/experiments_table.csv`` and ``.tex``.

Outcomes (see :func:`outcomes`) are read from the model's own tags: money flows
``[flow: <from> -> <to>]``, sector cash ``[cash: <sector>]`` and claims
``[claim: <debtor> -> <creditor>]`` in the variables' comments, so the table
follows the model when flows are added.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from . import paths, tables, tags
from .errors import AicarouselError

#: Cash cover (years of Lab's planned spending) below which Lab's cash counts as run out.
#: An analysis threshold (one month of spending), not a model parameter.
CASH_OUT_COVER = 1.0 / 12.0

#: Variables the table reads by name (Vensim names in the model).
INSTALLED_GW = "Cloud Installed Compute"
CLOUD_DEBT = "Cloud Debt"
LAB_CASH = "Lab Cash"
LAB_PLANNED_SPENDING = "Lab planned spending"
MARKET_VALUE = "{sector} Market Value"

#: Default output files.
DATASET_FILE = "experiments.nc"
TABLE_STEM = "experiments_table"



# --------------------------------------------------------------------------- tags
def tagged(ds: xr.Dataset) -> dict[str, Any]:
    """Read the machine-readable tags from the variables' descriptions.

    Parameters
    ----------
    ds : xarray.Dataset
        Result of :func:`aicarousel.model.run` (attrs ``description`` per variable).

    Returns
    -------
    dict
        ``flows``: {variable: (from, to)}; ``cash``: {sector: variable};
        ``claims``: {variable: (debtor, creditor)}; ``sectors``: sorted sector names
        (those with a cash stock); ``outside``: counterparties that are not sectors.
    """
    flows, cash, claims = {}, {}, {}
    for name, var in ds.data_vars.items():
        tag = tags.parse(str(var.attrs.get("description", "")))
        if tag is None:
            continue
        if tag.kind == "flow" and tag.ends:
            flows[name] = tag.ends
        elif tag.kind == "cash" and tag.body:
            cash[tag.body] = name
        elif tag.kind == "claim" and tag.ends:
            claims[name] = tag.ends
    sectors = sorted(cash)
    outside = sorted({a for a, _ in flows.values()} | {b for _, b in flows.values()} - set(sectors))
    outside = [o for o in outside if o not in sectors]
    return {"flows": flows, "cash": cash, "claims": claims, "sectors": sectors, "outside": outside}


def _cumulative(da: xr.DataArray, dt: float) -> float:
    """Euler sum of a flow over the run: sum of flow(t_i) * dt for all steps but the last."""
    v = np.asarray(da.values, dtype=float)
    return float(v[:-1].sum() * dt)


def _max_drawdown(v: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of that peak (0 when it never falls)."""
    v = np.asarray(v, dtype=float)
    peak = np.maximum.accumulate(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - v) / peak, 0.0)
    return float(np.max(dd)) if dd.size else 0.0


def outcomes(ds: xr.Dataset, dt: float | None = None) -> dict[str, float]:
    """The outcomes a paper would quote, from one run.

    Parameters
    ----------
    ds : xarray.Dataset
        One run on an evenly spaced time grid (best at the model's TIME STEP:
        cumulative sums are then exact).
    dt : float, optional
        Spacing of ``ds.time`` (years); default read from the grid.

    Returns
    -------
    dict of str to float
        Keys are column names with units, e.g. ``"Peak installed compute (GW)"``;
        NaN where an outcome does not apply (e.g. Lab's cash never runs out).
    """
    missing = [v for v in (INSTALLED_GW, CLOUD_DEBT, LAB_CASH, LAB_PLANNED_SPENDING) if v not in ds]
    if missing:
        raise AicarouselError(
            f"the results lack {', '.join(repr(m) for m in missing)}, which the comparison table "
            "reads: rename the constants at the top of aicarousel/experiments.py to match the model")
    t = np.asarray(ds["time"].values, dtype=float)
    dt = float(np.median(np.diff(t))) if dt is None else float(dt)
    tags = tagged(ds)
    out: dict[str, float] = {}
    gw = np.asarray(ds[INSTALLED_GW].values)
    i = int(np.argmax(gw))
    out["Peak installed compute (GW)"] = float(gw[i])
    out["Year of peak installed compute (year)"] = float(t[i])
    inflow: dict[str, float] = {o: 0.0 for o in tags["outside"]}
    for var, (src, dst) in tags["flows"].items():
        if src in inflow and dst in tags["sectors"]:
            inflow[src] += _cumulative(ds[var], dt)
    for src in sorted(inflow):
        if inflow[src] != 0.0 or any(s == src for s, _ in tags["flows"].values()):
            out[f"Money in from {src} ($B)"] = inflow[src]
    out["Money in from outside, total ($B)"] = float(sum(inflow.values()))
    debt = np.asarray(ds[CLOUD_DEBT].values)
    out["Peak Cloud debt ($B)"] = float(debt.max())
    cloud_mv = MARKET_VALUE.format(sector="Cloud")
    if cloud_mv in ds:
        with np.errstate(divide="ignore", invalid="ignore"):
            lev = debt / np.asarray(ds[cloud_mv].values)
        out["Peak Cloud debt to market value (ratio)"] = float(np.nanmax(lev))
    for sector in tags["sectors"]:
        mv = MARKET_VALUE.format(sector=sector)
        if mv in ds:
            out[f"Largest fall in {sector} market value (%)"] = 100.0 * _max_drawdown(ds[mv].values)
    cash = np.asarray(ds[LAB_CASH].values)
    spend = np.asarray(ds[LAB_PLANNED_SPENDING].values)
    short = np.nonzero(cash < CASH_OUT_COVER * spend)[0]
    out["Year Lab's cash runs out (year)"] = float(t[short[0]]) if short.size else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(spend > 0, cash / spend, np.inf)
    out["Lowest Lab cash cover (year)"] = float(np.min(cover))
    lab_in = sum(_cumulative(ds[v], dt) for v, (s, d) in tags["flows"].items()
                 if s == "End users" and d == "Lab")
    lab_out = sum(_cumulative(ds[v], dt) for v, (s, d) in tags["flows"].items() if s == "Lab")
    out["Lab spending paid by end users (%)"] = 100.0 * lab_in / lab_out if lab_out > 0 else float("nan")
    for var, (debtor, creditor) in tags["claims"].items():
        if debtor == "Lab" and creditor in tags["sectors"]:
            out[f"{creditor}' stake in Lab at end ($B)" if creditor.endswith("s")
                else f"{creditor}'s stake in Lab at end ($B)"] = float(ds[var].values[-1])
    return out


# --------------------------------------------------------------------------- tables
def _fmt(value: float, col: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "--"
    if col.startswith("Year") and "(year)" in col:
        return f"{value:.1f}"
    if "(year)" in col:
        return f"{value:.2f}"
    if "(ratio)" in col:
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", "{,}")
    return f"{value:.1f}"


def latex_table(table: pd.DataFrame, caption: str | None = None, label: str = "tab:experiments") -> str:
    """Figure-ready LaTeX of the comparison table: outcomes as rows, scenarios as columns.

    Needs ``\\usepackage{booktabs,graphicx}``. Scenario names are set vertically so
    eleven scenarios fit a double-column page (``table*``).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per scenario (index: scenario names), columns with units.
    caption : str, optional
        Table caption.
    label : str
        LaTeX label.

    Returns
    -------
    str
        A complete ``table*`` environment.
    """
    scen = list(table.index)
    labels = scenario_labels(scen)
    caption = caption or ("Outcomes of the policy and stress experiments, 2024--2035. Money is "
                          "cumulative over the run; -- means the event does not happen.")
    # outcomes as rows, one column per scenario; cells formatted for the outcome's unit
    rows = pd.DataFrame({"Outcome": list(table.columns)})
    for s in scen:
        rows[s] = [_fmt(float(table.loc[s, c]), c) for c in table.columns]
    fmt = {s: str for s in scen}  # already LaTeX
    header = {s: f"\\rotatebox{{90}}{{{tables.latex_escape(labels[s])}}}" for s in scen}
    return tables.to_latex(
        rows, formatters=fmt, header=header, caption=caption, label=label,
        environment="table*", position="t", column_format="l" + "r" * len(scen),
        commands=["footnotesize", "setlength{\\tabcolsep}{3pt}"],
        comments=["Generated by aicarousel.experiments.latex_table; do not edit by hand.",
                  "Needs \\usepackage{booktabs,graphicx}."])


def write_table(table: pd.DataFrame, stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write the comparison table as ``<stem>.csv`` and ``<stem>.tex`` (atomic writes).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`run_experiments`.
    stem : path
        Output path without suffix.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        CSV and LaTeX paths.
    """
    return tables.write_table(table, stem, latex_table(table), index_label="scenario",
                              float_format="%.6g")


# --------------------------------------------------------------------------- running
def run_experiments(names: Iterable[str] | None = None, *, scenarios_dir: str | os.PathLike | None = None,
                    model_file: str | os.PathLike | None = None,
                    output: str | os.PathLike | None = "default",
                    table: str | os.PathLike | None = "default",
                    progress: bool = True) -> tuple[xr.Dataset, pd.DataFrame]:
    """Validate, run and compare scenarios.

    Parameters
    ----------
    names : iterable of str, optional
        Scenario names; default every file in ``scenarios/`` (baseline first).
    scenarios_dir, model_file : path, optional
        Defaults ``scenarios/`` and ``models/ai_carousel.mdl``.
    output : path or None
        netCDF file for the Dataset; ``"default"`` = ``results/experiments.nc``; None: no file.
    table : path or None
        Stem of the table files; ``"default"`` = ``results/experiments_table``; None: no files.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    (xarray.Dataset, pandas.DataFrame)
        Dataset with dims ``scenario`` x ``time`` (model SAVEPER) and coords
        ``description`` and ``params_changed`` (JSON) per scenario; the comparison
        table indexed by scenario.

    Raises
    ------
    aicarousel.errors.ScenarioError
        Before any run, if any requested scenario is invalid.
    aicarousel.errors.SimulationError, OutputError
        If a run fails or a file cannot be written (nothing half-written is left).
    """
    from tqdm.auto import tqdm

    from . import model as _model
    from . import scenarios as _sc

    resolved = _sc.validate_all(names, scenarios_dir=scenarios_dir, model_file=model_file)
    facts = _sc.model_facts(model_file)
    m = _model.load(model_file)
    dt = float(m.components.time_step())
    saveper = float(m.components.saveper())
    stride = max(1, int(round(saveper / dt)))
    runs, rows = [], {}
    for name, rs in tqdm(resolved.items(), desc="scenarios", unit="run", disable=not progress):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Replacing a constant value with a time-dependent",
                                    category=UserWarning)
            ds = _model.run(params=rs.overrides(facts), model_file=model_file, saveper=dt)
        rows[name] = outcomes(ds, dt)
        coarse = ds.isel(time=slice(None, None, stride))
        if float(coarse.time[-1]) != float(ds.time[-1]):
            coarse = ds.isel(time=sorted(set(range(0, ds.sizes["time"], stride)) | {ds.sizes["time"] - 1}))
        runs.append(coarse)
    table_df = pd.DataFrame.from_dict(rows, orient="index")
    table_df.index.name = "scenario"
    names_list = list(resolved)
    first_attrs = dict(runs[0].attrs)
    combined = xr.concat([r.drop_attrs(deep=False) for r in runs],
                         dim=pd.Index(names_list, name="scenario"), combine_attrs="drop_conflicts")
    for v in combined.data_vars:
        combined[v].attrs = dict(runs[0][v].attrs)
    combined = combined.assign_coords(
        description=("scenario", [resolved[n].description for n in names_list]),
        params_changed=("scenario", [_params_json(resolved[n], facts) for n in names_list]),
        extends_chain=("scenario", [" > ".join(resolved[n].chain) for n in names_list]),
    )
    attrs = {k: v for k, v in first_attrs.items() if k not in ("params_changed", "run_control")}
    attrs["scenarios"] = json.dumps(names_list)
    attrs["run_control"] = json.dumps({"time_step": dt, "saveper": saveper,
                                       "initial_time": facts.initial_time, "final_time": facts.final_time})
    attrs["outcomes_note"] = ("cumulative money is the Euler sum at TIME STEP over the whole run; "
                              f"Lab's cash runs out when it falls below {CASH_OUT_COVER:.4g} years "
                              "of planned spending")
    combined.attrs = attrs
    if output is not None:
        out = paths.RESULTS_DIR / DATASET_FILE if output == "default" else Path(output)
        _model.write_netcdf(combined, out)
    if table is not None:
        stem = paths.RESULTS_DIR / TABLE_STEM if table == "default" else Path(table)
        write_table(table_df, stem)
    return combined, table_df


def _params_json(rs: Any, facts: Any) -> str:
    data: dict[str, Any] = {}
    for k, v in rs.overrides(facts).items():
        if isinstance(v, pd.Series):
            data[k] = [[float(t), float(x)] for t, x in v.items()]
        else:
            data[k] = float(v)
    return json.dumps(data, sort_keys=True)


def load_results(path: str | os.PathLike | None = None) -> xr.Dataset:
    """Open ``results/experiments.nc`` (or ``path``) for analysis and figures.

    Parameters
    ----------
    path : path, optional
        Default ``results/experiments.nc``.

    Returns
    -------
    xarray.Dataset
        Loaded into memory (the file is closed).

    Raises
    ------
    AicarouselError
        If the file does not exist, with the command that makes it.
    """
    p = Path(path) if path is not None else paths.RESULTS_DIR / DATASET_FILE
    if not p.is_file():
        raise AicarouselError(
            f"{paths.relative_to_root(p)} not found: run `aicarousel experiment` (or `make figures`) first"
        )
    with xr.open_dataset(p) as ds:
        return ds.load()


def load_table(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the comparison table CSV written by :func:`run_experiments`.

    Parameters
    ----------
    path : path, optional
        Default ``results/experiments_table.csv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by scenario.
    """
    p = Path(path) if path is not None else (paths.RESULTS_DIR / TABLE_STEM).with_suffix(".csv")
    if not p.is_file():
        raise AicarouselError(
            f"{paths.relative_to_root(p)} not found: run `aicarousel experiment` (or `make figures`) first"
        )
    return pd.read_csv(p, index_col="scenario")


def results_attrs(results_dir: str | os.PathLike | None = None) -> dict:
    """Global attributes (provenance) of ``experiments.nc`` in ``results_dir``, or {} if absent.

    Lets figures drawn from the CSV table record the model hash of the runs behind it.
    """
    p = Path(results_dir if results_dir is not None else paths.RESULTS_DIR) / DATASET_FILE
    if not p.is_file():
        return {}
    with xr.open_dataset(p) as ds:
        return dict(ds.attrs)


def scenario_labels(names: Iterable[str]) -> dict[str, str]:
    """Short human labels for scenario names (``funding_stop`` -> ``Funding stop``)."""
    out = {}
    for n in names:
        words = n.replace("_", " ").capitalize().split(" ")
        out[n] = " ".join(w.upper() if w.lower() in ("gpu", "gpus", "ai") else w for w in words)
    return out


__all__ = ["run_experiments", "outcomes", "tagged", "latex_table", "write_table", "load_results",
           "load_table", "scenario_labels", "CASH_OUT_COVER"]


# --------------------------------------------------------------------------- over the posterior
#: Posterior draws each scenario runs with by default (``aicarousel experiment --from-posterior``).
POSTERIOR_DRAWS = 100
#: Percentiles of the bands over the posterior draws.
POSTERIOR_PERCENTILES = (5, 50, 95)
POSTERIOR_DATASET_FILE = "experiments_posterior.nc"
POSTERIOR_TABLE_FILE = "experiments_posterior_table.csv"


def _outcome_variables(cm: Any) -> list[str]:
    """Every variable :func:`outcomes` reads (fixed names, market values, tagged flows and
    claims), found from one baseline run's descriptions, so the posterior runs keep only these."""
    one = cm.run(n=1, saveper=float(cm.ir.time.dt))
    tg = tagged(one)
    names = [INSTALLED_GW, CLOUD_DEBT, LAB_CASH, LAB_PLANNED_SPENDING]
    names += [MARKET_VALUE.format(sector=s) for s in tg["sectors"]]
    names += list(tg["flows"]) + list(tg["claims"]) + list(tg["cash"].values())
    return [n for n in dict.fromkeys(names) if n in one]


def run_posterior_experiments(names: Iterable[str] | None = None, *,
                              posterior: str | os.PathLike, n_draws: int = POSTERIOR_DRAWS,
                              seed: int = 0, scenarios_dir: str | os.PathLike | None = None,
                              model_file: str | os.PathLike | None = None,
                              output: str | os.PathLike | None = "default",
                              table: str | os.PathLike | None = "default",
                              progress: bool = True) -> tuple[xr.Dataset, pd.DataFrame]:
    """Run each scenario over posterior draws of the calibrated parameters; report bands.

    ``n_draws`` draws of ``posterior_draws.nc`` (``aicarousel calibrate``; chosen without
    replacement with the seed) give the estimated parameters of every run; each scenario's own
    settings are applied on top (a scenario that sets an estimated parameter wins: it is a
    lever, listed in ``scenario_sets_estimated``). The ensemble engine (bit-identical to PySD)
    runs each scenario's draws in one call.

    Returns
    -------
    (xarray.Dataset, pandas.DataFrame)
        Bands over the draws: dims ``scenario`` x ``percentile`` (5, 50, 95) x ``time`` of the
        variables the outcomes read; the table indexed by (scenario, outcome) with columns
        ``p5``, ``median``, ``p95`` and ``defined`` (share of draws where the outcome applies,
        e.g. Lab's cash runs out). Provenance (posterior file and hash, draws, seed, model
        hash) in the attrs and the CSV's first line.
    """
    from tqdm.auto import tqdm

    from . import scenarios as _sc
    from .calibrate import load_posterior_draws
    from .ensemble import compile_model
    from .provenance import provenance
    from .sensitivity import check_seed, percentile_bands

    pnames, draws, sha = load_posterior_draws(posterior)   # first: a missing file is one line
    seed = check_seed(seed, "--seed")
    if int(n_draws) < 1:
        raise AicarouselError(f"--draws {n_draws}: give at least 1")
    resolved = _sc.validate_all(names, scenarios_dir=scenarios_dir, model_file=model_file)
    facts = _sc.model_facts(model_file)
    cm = compile_model(model_file)
    unknown = [n for n in pnames if n not in facts.constants]
    if unknown:
        raise AicarouselError(f"--from-posterior: {unknown[0]!r} of the posterior is not a "
                              "constant of the model; run `aicarousel calibrate` again")
    rng = np.random.default_rng([seed, 15])
    m = min(int(n_draws), draws.shape[0])
    sel = draws[np.sort(rng.choice(draws.shape[0], size=m, replace=False))]
    dt = float(cm.ir.time.dt)
    saveper = float(cm.ir.time.saveper)
    variables = _outcome_variables(cm)
    band_list, rows, fixed_by = [], [], []
    for name, rs in tqdm(resolved.items(), desc="scenarios x posterior", unit="scenario",
                         disable=not progress):
        ov = rs.overrides(facts)
        params = {n: sel[:, j] for j, n in enumerate(pnames) if n not in ov}
        params.update(ov)
        fixed_by.append(json.dumps(sorted(n for n in pnames if n in ov)))
        ds = cm.run(params, n=m, outputs=variables, saveper=dt)
        per_draw = pd.DataFrame([outcomes(ds.isel(run=i), dt) for i in range(m)])
        for col in per_draw.columns:
            v = per_draw[col].to_numpy(float)
            ok = np.isfinite(v)
            q = (np.percentile(v[ok], POSTERIOR_PERCENTILES) if ok.any()
                 else [np.nan] * len(POSTERIOR_PERCENTILES))
            rows.append({"scenario": name, "outcome": col, "p5": q[0], "median": q[1],
                         "p95": q[2], "defined": float(ok.mean())})
        stride = max(1, int(round(saveper / dt)))
        band_list.append(percentile_bands(ds.isel(time=slice(None, None, stride)),
                                          POSTERIOR_PERCENTILES))
    bands = xr.concat(band_list, dim=pd.Index(list(resolved), name="scenario"))
    bands = bands.assign_coords(scenario_sets_estimated=("scenario", fixed_by))
    post = Path(posterior)
    post = post / "posterior_draws.nc" if post.is_dir() else post
    prov = provenance(model_hash=cm.model_hash, seed=seed, posterior=f"{post}#{sha}",
                      draws=str(m), estimated_parameters=list(pnames),
                      scenarios=list(resolved))
    bands.attrs.update(prov)
    table_df = pd.DataFrame(rows).set_index(["scenario", "outcome"])
    if output is not None:
        out = paths.RESULTS_DIR / POSTERIOR_DATASET_FILE if output == "default" else Path(output)
        from .atomic import write_netcdf
        write_netcdf(bands, out)
    if table is not None:
        path = paths.RESULTS_DIR / POSTERIOR_TABLE_FILE if table == "default" else Path(table)
        from .atomic import write_text
        head = "# made by aicarousel experiment --from-posterior; provenance: " + json.dumps(
            {k: prov[k] for k in ("model_hash", "git_commit", "created", "seed", "posterior",
                                  "draws")}) + "\n"
        write_text(path, head + table_df.to_csv(lineterminator="\n", float_format="%.6g"))
    return bands, table_df
