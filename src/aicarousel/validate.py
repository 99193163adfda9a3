"""Sterman's model tests (Business Dynamics, ch. 21) as one report, for any model the engines
accept.

:func:`validate` runs eight sections on a model file and returns a :class:`Report`; each
section ends in ``pass``, ``fail`` or ``not applicable`` with its evidence:

1. *Dimensional consistency*: :func:`aicarousel.units.check_units`.
2. *Extreme conditions*: every uncertain parameter at its low bound, at 0 (where the model's
   declared range allows) and at 10x its high bound; every exogenous input (lever) at 0 and
   doubled. Flags NaN/inf (first variable and time), stocks below their declared lower bound
   (``[0,?]`` in the units field) and explosions (a stock growing more than
   ``explosion_factor`` per year, sustained over two years). One ensemble run
   (:mod:`aicarousel.ensemble`).
3. *Reality checks* from ``<model dir>/<model stem>.checks.yaml`` (see :func:`load_checks`).
4. *Integration error*: stocks and flows at TIME STEP, /2, /4 and with RK4 (pysimlin); the
   integral of every variable that books a quantity with PULSE/STEP at TIME STEP, /2, /4 and
   0.7 x TIME STEP (off the event grid).
5. *Loop activity*: for each named loop (``named_loops.yaml``), its polarity and the share of
   the baseline in which at least one of its cycles has every link gain non-zero
   (:mod:`aicarousel.loops`); a loop never active in the baseline or any declared scenario
   fails.
6. *Parameter assessment*: values inside their ranges, each with a source
   (:func:`aicarousel.params.check_table`), and which ones the calibration constrains
   (:func:`calibration_constraints`; "no calibration found" until one is run).
7. *Behaviour reproduction*: :func:`aicarousel.calibration.compare`.
8. *Random in-range runs*: N parameter sets uniform inside the ranges; failures (NaN,
   negative stocks, failed hard reality checks) listed with their parameter sets.

Nothing here is specific to one model: what is model-specific lives in the model file (units,
ranges) and in its checks file. :func:`write_report` writes Markdown, LaTeX, JSON and a figure
into a directory, all or nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import shutil
import time as _time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import AicarouselError, ChecksError, OutputError, ScenarioError

__all__ = ["Section", "Report", "Checks", "load_checks", "validate", "write_report",
           "checks_path", "CONDITIONS", "DEFAULT_EXPLOSION_FACTOR"]

PASS, FAIL, NA = "pass", "fail", "not applicable"

#: Stock growth per year, sustained over ``SUSTAINED_YEARS``, above which a run "explodes"
#: (unless the checks file says otherwise).
DEFAULT_EXPLOSION_FACTOR = 10.0
#: Thresholds of the integration-error section (relative to the variable's largest magnitude).
STOCK_TOL, FLOW_TOL, BOOKING_TOL = 0.01, 0.05, 0.01
#: RK4 serves as the reference for a variable only where halving its step changes it by less
#: than this share of the tolerance (converged); elsewhere Euler's dt vs dt/4 decides.
RK4_CONVERGED = 0.1
#: Smallest denominator of a relative change, as a share of the variable's peak magnitude.
REL_FLOOR = 0.05
#: Conditions a reality check may state about a variable.
CONDITIONS = ("zero", "below", "above", "falls", "rises", "reaches", "below_baseline",
              "above_baseline")
_CHECK_KEYS = {"name", "why", "impose", "expect", "expected_failure"}
_EXPECT_KEYS = {"variable", "from", "to", "by", "tol"} | set(CONDITIONS)
_FILE_KEYS = {"parameters", "calibration_targets", "out_of_sample_targets", "scenarios",
              "named_loops", "explosion_factor", "checks"}


# --------------------------------------------------------------------------------------------
# Report structure
# --------------------------------------------------------------------------------------------
@dataclass
class Section:
    """One test: ``status`` is ``"pass"``, ``"fail"`` or ``"not applicable"``."""

    key: str
    title: str
    status: str
    summary: str
    evidence: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"key": self.key, "title": self.title, "status": self.status,
                "summary": self.summary, "evidence": self.evidence, "table": self.table,
                "data": self.data}


@dataclass
class Report:
    """All sections of one validation, with provenance."""

    model: str
    model_hash: str
    quick: bool
    sections: list[Section]
    provenance: dict
    seconds: float = 0.0

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def to_dict(self) -> dict:
        return {"model": self.model, "model_hash": self.model_hash, "quick": self.quick,
                "seconds": round(self.seconds, 1), "provenance": self.provenance,
                "sections": [s.to_dict() for s in self.sections]}

    def to_json(self) -> str:
        return json.dumps(_jsonable(self.to_dict()), indent=1, sort_keys=False) + "\n"

    def to_markdown(self) -> str:
        L = [f"# Validity report: {self.model}", "",
             f"Model hash `{self.model_hash[:16]}`, git commit `{self.provenance.get('git_commit', '?')}`,"
             f" {'quick' if self.quick else 'full'} run in {self.seconds:.0f} s.",
             "Tests after Sterman, *Business Dynamics*, ch. 21.", "",
             "| Test | Result |", "|---|---|"]
        L += [f"| {i}. {s.title} | {s.status} |" for i, s in enumerate(self.sections, 1)]
        for i, s in enumerate(self.sections, 1):
            L += ["", f"## {i}. {s.title}", "", s.summary, ""]
            L += [f"- {e}" for e in s.evidence]
            if s.table:
                cols = list(s.table[0])
                L += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                for r in s.table:
                    L.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
            L += ["", f"**Result: {s.status}**"]
        return "\n".join(L) + "\n"

    def to_latex(self) -> str:
        L = [r"% Validity report written by `aicarousel validate`; \input{} it in an appendix.",
             rf"\subsection*{{Validity tests: {_tex(self.model)}}}",
             rf"Model hash \texttt{{{self.model_hash[:16]}}}; tests after Sterman (2000, ch.~21).",
             "", r"\begin{tabular}{ll}", r"\toprule", r"Test & Result \\", r"\midrule"]
        L += [rf"{i}. {_tex(s.title)} & {_tex(s.status)} \\" for i, s in enumerate(self.sections, 1)]
        L += [r"\bottomrule", r"\end{tabular}", ""]
        for i, s in enumerate(self.sections, 1):
            L += [rf"\paragraph{{{i}. {_tex(s.title)}}} {_tex(s.summary)}"]
            if s.evidence:
                L += [r"\begin{itemize}"] + [rf"\item {_tex(e)}" for e in s.evidence[:25]]
                if len(s.evidence) > 25:
                    L.append(rf"\item \ldots\ {len(s.evidence) - 25} more (see the JSON report)")
                L.append(r"\end{itemize}")
            if s.table:
                cols = list(s.table[0])
                rows = s.table[:40]
                wide = [c for c in cols if max(len(_cell(r.get(c))) for r in rows) > 30]
                spec = "".join(rf"p{{{0.8 / len(wide):.2f}\linewidth}}" if c in wide else "l"
                               for c in cols)
                L += [r"{\footnotesize", r"\begin{tabular}{" + spec + "}", r"\toprule",
                      " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
                for r in rows:
                    L.append(" & ".join(_tex(_cell(r.get(c))) for c in cols) + r" \\")
                L += [r"\bottomrule", r"\end{tabular}}", ""]
            L += [rf"Result: \textbf{{{_tex(s.status)}}}.", ""]
        return "\n".join(L) + "\n"


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "/")


def _tex(s) -> str:
    s = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                 ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}"),
                 ("~", r"\~{}"), ("`", "")):
        s = s.replace(a, b) if a != "\\" else s.replace(a, "\0")
    return s.replace("\0", r"\textbackslash{}")


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if math.isfinite(f) else str(f)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# --------------------------------------------------------------------------------------------
# Checks file
# --------------------------------------------------------------------------------------------
@dataclass
class Condition:
    """One expected behaviour of a variable (parsed from the checks file)."""

    variable: str          # py_name
    real: str
    kind: str              # one of CONDITIONS
    value: float | None
    start: float
    end: float
    by: float | None
    tol: float

    def describe(self) -> str:
        w = f" from {self.start:g} to {self.end:g}"
        if self.kind == "zero":
            return f"{self.real} stays zero{w}"
        if self.kind in ("below", "above"):
            return f"{self.real} stays {self.kind} {self.value:g}{w}"
        if self.kind in ("falls", "rises"):
            return f"{self.real} {self.kind}{w}"
        if self.kind == "reaches":
            return f"{self.real} reaches {self.value:g} by {self.by:g}"
        return f"{self.real} ends {self.kind.replace('_', ' ')} at {self.end:g}"


@dataclass(frozen=True)
class _Scale:
    """An imposed constant given relative to its value in the run (``{scale: f}``)."""

    factor: float


@dataclass
class RealityCheck:
    name: str
    why: str
    impose: dict          # Vensim name -> float or pandas.Series
    expect: list[Condition]
    expected_failure: str | None


@dataclass
class Checks:
    """A parsed checks file (or an empty one when the model has none)."""

    path: Path | None
    checks: list[RealityCheck] = field(default_factory=list)
    parameters: Path | None = None
    calibration_targets: Path | None = None
    out_of_sample_targets: Path | None = None
    scenarios: Path | None = None
    named_loops: Path | None = None
    explosion_factor: float = DEFAULT_EXPLOSION_FACTOR


def checks_path(model_file: str | os.PathLike) -> Path:
    """``<model dir>/<model stem>.checks.yaml``."""
    p = Path(model_file)
    return p.with_name(p.stem + ".checks.yaml")


def _year(value, where: str) -> float:
    from .scenarios import _year as scenario_year

    try:
        return scenario_year(value, where)
    except ScenarioError as exc:
        raise ChecksError(str(exc)) from None


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ChecksError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def load_checks(model_file: str | os.PathLike, cm=None, path: str | os.PathLike | None = None) -> Checks:
    """Read and validate the checks file of a model (empty :class:`Checks` if there is none).

    The file is YAML::

        parameters: ../data/parameters.csv          # optional; else the model's own ranges
        calibration_targets: ../data/calibration_targets.csv   # optional
        scenarios: ../scenarios                     # optional; loop activity also there
        named_loops: named_loops.yaml               # optional; default beside the model
        explosion_factor: 10                        # per year over two years, optional
        checks:
          - name: no_outside_capital
            why: One sentence of why this must hold.
            impose: {Outside investment: 0}         # number, {scale: f} or [[year, value], ...]
            expect:
              - {variable: Lab Cash, falls: true, from: 2026}
              - {variable: Cloud Debt, below: 100}
              - {variable: Spot price, below_baseline: true, to: 2030}
              - {variable: X, reaches: 5, by: 2030-01-01}
            expected_failure: the defect that makes today's model fail it (optional)

    Paths are relative to the checks file; names are the model's (case-insensitive); dates
    are years or ISO dates inside the run.

    Raises
    ------
    ChecksError
        Unknown keys or variables (closest names suggested), malformed conditions, dates
        outside the run.
    """
    import pandas as pd
    import yaml

    from .ensemble import compile_model
    from .errors import UnknownParameterError

    p = Path(path) if path is not None else checks_path(model_file)
    if not p.is_file():
        if path is not None:
            raise ChecksError(f"checks file {p} not found; give an existing .checks.yaml")
        return Checks(path=None)
    cm = cm or compile_model(model_file)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p.name}:{mark.line + 1}" if mark else p.name
        raise ChecksError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ChecksError(f"{p.name}: expected a mapping with a 'checks' list")
    bad = sorted(set(data) - _FILE_KEYS)
    if bad:
        raise ChecksError(f"{p.name}: unknown key(s) {bad}; allowed: {sorted(_FILE_KEYS)}")
    out = Checks(path=p)
    for key in ("parameters", "calibration_targets", "out_of_sample_targets", "scenarios",
                "named_loops"):
        if data.get(key) is not None:
            q = (p.parent / str(data[key])).resolve()
            if not q.exists():
                raise ChecksError(f"{p.name}: {key}: {data[key]} not found (paths are relative "
                                  "to the checks file)")
            setattr(out, key, q)
    if "explosion_factor" in data:
        out.explosion_factor = _number(data["explosion_factor"], f"{p.name}: explosion_factor")
        if out.explosion_factor <= 1:
            raise ChecksError(f"{p.name}: explosion_factor must be > 1 (growth per year)")
    t0, t1 = float(cm.ir.time.initial), float(cm.ir.time.final)
    raw = data.get("checks") or []
    if not isinstance(raw, list):
        raise ChecksError(f"{p.name}: 'checks' must be a list of checks")
    names = set()
    for k, c in enumerate(raw, 1):
        where = f"{p.name}: check {k}"
        if not isinstance(c, dict):
            raise ChecksError(f"{where}: expected a mapping with name, why, impose, expect")
        if c.get("name"):
            where = f"{p.name}: check {c['name']!r}"
        bad = sorted(set(c) - _CHECK_KEYS)
        if bad:
            raise ChecksError(f"{where}: unknown key(s) {bad}; allowed: {sorted(_CHECK_KEYS)}")
        if not isinstance(c.get("impose") or {}, dict):
            raise ChecksError(f"{where}: 'impose' must map constant names to values")
        for need in ("name", "why", "expect"):
            if not c.get(need):
                raise ChecksError(f"{where}: '{need}' is missing")
        if c["name"] in names:
            raise ChecksError(f"{where}: duplicate check name")
        names.add(c["name"])
        impose = {}
        for var, val in (c.get("impose") or {}).items():
            try:
                real = cm.real_name(cm.py_name(str(var), kinds={"constant"}, what="imposed constant"))
            except UnknownParameterError as exc:
                raise ChecksError(f"{where}: impose: {exc}") from None
            if isinstance(val, dict):
                if set(val) != {"scale"}:
                    raise ChecksError(f"{where}: impose {var}: give a number, {{scale: factor}} or "
                                      "a list of [year, value] points")
                impose[real] = _Scale(_number(val["scale"], f"{where}: impose {var}: scale"))
            elif isinstance(val, list):
                try:
                    pts = [(_year(a, f"{where}: impose {var}"), _number(b, f"{where}: impose {var}"))
                           for a, b in val]
                except (TypeError, ValueError):
                    raise ChecksError(f"{where}: impose {var}: give a number or a list of "
                                      "[year, value] points") from None
                for tt, _ in pts:
                    if not t0 <= tt <= t1:
                        raise ChecksError(f"{where}: impose {var}: year {tt:g} outside the run "
                                          f"[{t0:g}, {t1:g}]")
                impose[real] = pd.Series([b for _, b in pts], index=[a for a, _ in pts])
            else:
                impose[real] = _number(val, f"{where}: impose {var}")
        expect = c["expect"] if isinstance(c["expect"], list) else [c["expect"]]
        conds = [_parse_condition(e, f"{where}: expect {j}", cm, t0, t1)
                 for j, e in enumerate(expect, 1)]
        xf = c.get("expected_failure")
        out.checks.append(RealityCheck(str(c["name"]), " ".join(str(c["why"]).split()), impose,
                                       conds, str(xf).strip() if xf else None))
    return out


def _parse_condition(e, where, cm, t0, t1) -> Condition:
    from .errors import UnknownParameterError

    if not isinstance(e, dict) or "variable" not in e:
        raise ChecksError(f"{where}: expected a mapping with 'variable' and one of {list(CONDITIONS)}")
    bad = sorted(set(e) - _EXPECT_KEYS)
    if bad:
        close = {b: difflib.get_close_matches(b, sorted(_EXPECT_KEYS), n=1) for b in bad}
        hint = "; ".join(f"{b!r}: did you mean {m[0]!r}?" for b, m in close.items() if m)
        raise ChecksError(f"{where}: unknown condition key(s) {bad}"
                          + (f" ({hint})" if hint else f"; use one of {list(CONDITIONS)}"))
    kinds = [k for k in CONDITIONS if k in e]
    if len(kinds) != 1:
        raise ChecksError(f"{where}: give exactly one condition of {list(CONDITIONS)}, got {kinds}")
    kind = kinds[0]
    try:
        py = cm.py_name(str(e["variable"]), what="variable")
    except UnknownParameterError as exc:
        raise ChecksError(f"{where}: {exc}") from None
    if cm.ir.variables[py].kind == "lookup":
        raise ChecksError(f"{where}: {e['variable']!r} is a lookup table, not a variable")
    value = None
    if kind in ("below", "above", "reaches"):
        value = _number(e[kind], f"{where}: {kind}")
    elif e[kind] is not True:
        raise ChecksError(f"{where}: write '{kind}: true'")
    start = _year(e["from"], f"{where}: from") if "from" in e else t0
    end = _year(e["to"], f"{where}: to") if "to" in e else t1
    by = None
    if kind == "reaches":
        if "by" not in e:
            raise ChecksError(f"{where}: 'reaches' needs 'by: <date>'")
        by = _year(e["by"], f"{where}: by")
    elif "by" in e:
        raise ChecksError(f"{where}: 'by' only goes with 'reaches'")
    for label, tt in (("from", start), ("to", end), ("by", by)):
        if tt is not None and not t0 - 1e-9 <= tt <= t1 + 1e-9:
            raise ChecksError(f"{where}: {label} {tt:g} is outside the run [{t0:g}, {t1:g}]")
    if end <= start:
        raise ChecksError(f"{where}: 'to' ({end:g}) must come after 'from' ({start:g})")
    tol = _number(e.get("tol", 1e-6), f"{where}: tol")
    return Condition(py, cm.real_name(py), kind, value, start, end, by, tol)


def evaluate_condition(cond: Condition, t: np.ndarray, x: np.ndarray,
                       base: np.ndarray | None = None) -> np.ndarray:
    """Whether each run (rows of ``x``, shape (N, T)) satisfies ``cond``; NaN fails."""
    x = np.atleast_2d(x)
    w = (t >= cond.start - 1e-9) & (t <= cond.end + 1e-9)
    i0 = int(np.argmax(w))
    i1 = len(t) - 1 - int(np.argmax(w[::-1]))
    xs = x[:, w]
    finite = np.all(np.isfinite(x), axis=1)
    k = cond.kind
    if k == "zero":
        ok = np.all(np.abs(xs) <= cond.tol, axis=1)
    elif k == "below":
        ok = np.all(xs <= cond.value + cond.tol, axis=1)
    elif k == "above":
        ok = np.all(xs >= cond.value - cond.tol, axis=1)
    elif k == "falls":
        ok = x[:, i1] < x[:, i0] - cond.tol
    elif k == "rises":
        ok = x[:, i1] > x[:, i0] + cond.tol
    elif k == "reaches":
        upto = (t >= cond.start - 1e-9) & (t <= cond.by + 1e-9)
        up = x[:, i0] <= cond.value
        ok = np.where(up, np.any(x[:, upto] >= cond.value - cond.tol, axis=1),
                      np.any(x[:, upto] <= cond.value + cond.tol, axis=1))
    else:
        b = np.atleast_2d(base)[:, i1]
        margin = cond.tol * np.maximum(1.0, np.abs(b))
        ok = x[:, i1] < b - margin if k == "below_baseline" else x[:, i1] > b + margin
    return ok & finite


# --------------------------------------------------------------------------------------------
# Model context
# --------------------------------------------------------------------------------------------
class _Context:
    def __init__(self, model_file, checks_file=None, quick=False, seed=20251201, progress=False):
        from .ensemble import compile_model
        from .units import rate_variables

        self.path = Path(model_file)
        self.cm = compile_model(self.path)
        # the compiled IR is cached by content: it may name another file with the same bytes,
        # so point it at this one (definition lines, the model key of named loops)
        self.ir = dataclasses.replace(self.cm.ir, path=self.path)
        self.quick, self.seed, self.progress = quick, seed, progress
        self.checks = load_checks(self.path, self.cm, checks_file)
        ir = self.ir
        self.stocks = [n for n in ir.stocks if not ir.variables[n].internal]
        flows = set()
        for s in self.stocks:
            flows |= {d for d in ir.dependencies(s) if ir.variables[d].kind == "aux"
                      and not ir.variables[d].internal}
        self.flows = sorted(flows)
        self.lower = {s: ir.variables[s].limits[0] for s in self.stocks
                      if ir.variables[s].limits[0] is not None}
        # a stock declared per time unit (an expected growth rate, say): its growth factor means
        # nothing (5%/yr becoming 50%/yr is a change of regime, not an explosion), so the
        # explosion test skips it; NaN and bound checks still apply
        self.rates = rate_variables(ir) & set(self.stocks)
        t, base = _diag(self.cm)(outputs=self.stocks + self.flows)
        self.t, self.base = t, {k: v[0] for k, v in base.items()}
        self.scale = {k: float(np.nanmax(np.abs(v))) if np.any(np.isfinite(v)) else 1.0
                      for k, v in self.base.items()}
        # the baseline's own fastest growth per year of each stock (a booked contract may jump)
        self.base_growth = {s: float(g[0]) for s, g in
                            _growth(self, t, {s: base[s] for s in self.stocks},
                                    beyond_peak=False).items()}
        self.space = self._parameter_space()

    def _parameter_space(self):
        """Rows ``name, value, low, high, role, source, min`` of the constants that vary."""
        from .ir import CONTROL_VARS

        rows = []
        table = None
        if self.checks.parameters is not None:
            from .params import read_table
            table = read_table(self.checks.parameters)
        for n, v in self.ir.variables.items():
            if v.kind != "constant" or n in CONTROL_VARS or v.internal:
                continue
            val = float(self.cm.defaults[n])
            lo_m, hi_m = v.limits
            if table is not None:
                if v.real_name not in table.index:
                    continue
                r = table.loc[v.real_name]
                rows.append(dict(name=v.real_name, value=val, low=float(r["low"]),
                                 high=float(r["high"]), role=str(r["role"]),
                                 source=str(r["source"]), min=lo_m, declared="table"))
                continue
            if (lo_m is not None and hi_m is not None and math.isfinite(lo_m)
                    and math.isfinite(hi_m) and hi_m > lo_m):
                lo, hi, basis = float(lo_m), float(hi_m), "model range"
            elif val != 0:
                lo, hi = sorted((0.5 * val, 2.0 * val))
                basis = "assumed 0.5x-2x (no range declared)"
            else:
                continue
            rows.append(dict(name=v.real_name, value=val, low=lo, high=hi, role="uncertain",
                             source="", min=lo_m, declared=basis))
        return rows


def _first_bad(cm, params, runs) -> dict:
    """Per run index in ``runs``: the first variable (evaluation order) and saved time at
    which it goes NaN/inf (None if it does not), all in one ensemble call."""
    runs = list(runs)
    if not runs:
        return {}
    # arrays even for one run, so a division by zero gives inf as in the ensemble
    sub = {k: (np.asarray(v)[runs] if np.ndim(v) == 1 else np.full(len(runs), float(v)))
           for k, v in params.items()}
    t, vals = _diag(cm)(sub, n=len(runs), outputs=None)
    ir = cm.ir
    order = [n for n in ir.stocks if not ir.variables[n].internal] + [
        n for n in ir.order if n in vals]
    out = {}
    for r, i in enumerate(runs):
        first = None
        for k, tt in enumerate(t):
            for n in order:
                if n in vals and not np.isfinite(vals[n][r, k]):
                    first = (ir.variables[n].real_name, float(tt))
                    break
            if first:
                break
        out[i] = first
    return out


#: Years over which growth must last to count as an explosion (see ``_growth``).
SUSTAINED_YEARS = 2


def _growth(ctx: _Context, t, vals: dict, beyond_peak: bool = True) -> dict:
    """Largest sustained growth factor per year of each stock, per run: the growth over
    ``SUSTAINED_YEARS`` (two) years, as a factor per year (its geometric mean, so x100 over
    two years is x10 a year). Sustained, because a runaway keeps growing, while a stock that
    adjusts to a goal a parameter moved tenfold (a market value following a multiple, a cash
    stock refilled by a funding round or by revenue ten times its initial scale) can cross
    x10 within a year and then settles: with the model's adjustment times of a few months,
    a first-order adjustment closes most of any gap within a year whatever its size, so the
    one-year factor measures the size of the step, not a missing limit. A one-off jump is
    still flagged when it is so large that spread over two years it exceeds the limit each
    year (x100 and more in a year at factor 10). Runs shorter than two years use one year.
    Counted only from values above 5% of the stock's baseline peak (growth from next to
    nothing is not an explosion; a stock that is zero all along the baseline is not
    measured), only where the value keeps its sign over the window (a stock such as an
    expected growth rate that crosses zero has no growth factor), and only into values
    beyond the baseline's peak: a runaway carries a stock past anything the baseline
    reaches (debt of $42T on a baseline peak of $0.2T), while a stock refilling within the
    baseline's own range (a pipeline or a construction stage restarting from a low point
    after a parameter emptied it) is not one."""
    sp = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    k1 = max(1, int(round(1.0 / sp)))
    out = {}
    for s, x in vals.items():
        if x.shape[1] <= k1 or ctx.scale.get(s, 1.0) <= 1e-9:
            # a stock the baseline keeps at zero (arrears, say) has no scale to grow against
            out[s] = np.zeros(x.shape[0])
            continue
        years = SUSTAINED_YEARS if x.shape[1] > SUSTAINED_YEARS * k1 else 1
        k = years * k1
        a, b = np.abs(x[:, :-k]), np.abs(x[:, k:])
        floor = 0.05 * max(ctx.scale.get(s, 1.0), 1e-12)
        same_sign = np.sign(x[:, :-k]) == np.sign(x[:, k:])
        beyond = b > ctx.scale.get(s, 1.0) if beyond_peak else True
        with np.errstate(all="ignore"):
            ratio = np.where((a > floor) & same_sign & beyond, (b / a) ** (1.0 / years), 0.0)
        out[s] = np.where(np.isfinite(ratio), ratio, 0.0).max(axis=1)
    return out


def _flags(ctx: _Context, t, vals: dict, factor: float, n: int) -> list[list[str]]:
    """Per run, the list of flags: NaN/inf, below lower bound, explosion (growth per year,
    sustained over two years, above ``factor`` and above 1.5 times the baseline's own
    fastest sustained growth)."""
    out = [[] for _ in range(n)]
    growth = (_growth(ctx, t, {s: vals[s] for s in ctx.stocks if s not in ctx.rates})
              if math.isfinite(factor) else {})
    for s in ctx.stocks:
        x = vals[s]
        real = ctx.ir.variables[s].real_name
        bad = ~np.all(np.isfinite(x), axis=1)
        for i in np.flatnonzero(bad):
            out[i].append("nan")
        if s in ctx.lower:
            tol = 1e-6 * max(ctx.scale.get(s, 1.0), 1e-9)
            with np.errstate(invalid="ignore"):
                low = np.nanmin(np.where(np.isfinite(x), x, np.inf), axis=1)
            for i in np.flatnonzero(low < ctx.lower[s] - tol):
                j = int(np.argmax(x[i] < ctx.lower[s] - tol))
                out[i].append(f"negative: {real} = {x[i, j]:.4g} at {t[j]:g}")
        if s in growth:
            limit = max(factor, 1.5 * ctx.base_growth.get(s, 0.0))
            for i in np.flatnonzero(growth[s] > limit):
                out[i].append(f"explodes: {real} grows x{growth[s][i]:.3g} a year for "
                              f"{SUSTAINED_YEARS} years "
                              f"(limit x{limit:.3g})")
    return [sorted(set(f), key=f.index) for f in out]


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def _diag(cm):
    """Runs for diagnosis: NaN and inf are results to report here, not errors."""
    return lambda *a, **k: cm.run_arrays(*a, allow_nonfinite=True, **k)


def _units_section(ctx: _Context) -> Section:
    from .units import check_units

    res = check_units(ctx.ir)
    ev = [str(i) for i in res.issues]
    if res.undeclared:
        ev.append(f"{len(res.undeclared)} variable(s) without units (inferred or unchecked): "
                  + ", ".join(res.undeclared[:10]) + (" ..." if len(res.undeclared) > 10 else ""))
    status = FAIL if res.issues else (PASS if res.n_checked else NA)
    summary = (f"{res.n_checked} variables with declared units; {len(res.issues)} equation(s) "
               "whose units do not balance.")
    table = [{"variable": i.variable, "line": i.line, "left": i.left, "right": i.right,
              "problem": i.message} for i in res.issues]
    return Section("units", "Dimensional consistency", status, summary, ev, table,
                   {"n_checked": res.n_checked, "issues": table, "undeclared": res.undeclared})


def _extreme_section(ctx: _Context) -> Section:
    runs: list[tuple[str, str, float]] = []
    seen = set()
    for r in ctx.space:
        vals = []
        if r["role"] == "uncertain":
            vals += [("low bound", r["low"])]
            if (r["min"] is None or r["min"] <= 0) and r["low"] != 0:
                vals.append(("zero", 0.0))
            vals.append(("10x high bound", 10.0 * r["high"]))
        if r["role"] == "lever" or r["declared"] != "table":
            vals += [("cut to zero", 0.0), ("doubled", 2.0 * r["value"])]
        for label, v in vals:
            if (r["name"], v) not in seen and v != r["value"]:
                seen.add((r["name"], v))
                runs.append((r["name"], label, float(v)))
    # values the one parameter validator refuses (a duration below TIME STEP, ...) never reach
    # an engine: they are reported as refused, which is the protection working
    from .errors import AicarouselError
    from .params import facts_from_ir, validate as _check

    fx = facts_from_ir(ctx.ir)
    kept, refused = [], []
    for run in runs:
        try:
            _check({run[0]: run[2]}, fx, {})
            kept.append(run)
        except AicarouselError as exc:
            refused.append(f"{run[0]} = {run[2]:g} ({run[1]}) refused before the run: "
                           + " ".join(str(exc).split())[:200])
    runs = kept
    if not runs:
        return Section("extreme", "Extreme conditions", NA,
                       "No uncertain parameters or exogenous inputs to push to extremes"
                       + (f" that the parameter validator accepts ({len(refused)} refused)."
                          if refused else "."), refused)
    n = len(runs)
    params: dict[str, np.ndarray] = {}
    for i, (name, _, v) in enumerate(runs):
        if name not in params:
            params[name] = np.full(n, ctx.cm.defaults[ctx.cm.py_name(name)])
        params[name][i] = v
    t, vals = _diag(ctx.cm)(params, outputs=ctx.stocks, progress=ctx.progress)
    flags = _flags(ctx, t, vals, ctx.checks.explosion_factor, n)
    table, ev = [], []
    n_nan = n_neg = n_exp = 0
    firsts = _first_bad(ctx.cm, params, [i for i in range(n) if "nan" in flags[i]])
    for i, (name, label, v) in enumerate(runs):
        f = flags[i]
        if not f:
            continue
        if "nan" in f:
            n_nan += 1
            first = firsts[i]
            f = [x for x in f if x != "nan"]
            f.insert(0, f"NaN/inf: first {first[0]!r} at {first[1]:g}" if first else "NaN/inf")
        n_neg += any(x.startswith("negative") for x in f)
        n_exp += any(x.startswith("explodes") for x in f)
        table.append({"parameter": name, "setting": label, "value": v, "problem": "; ".join(f[:3])})
    summary = (f"{n} runs (each parameter alone at an extreme, ensemble engine): {n_nan} NaN/inf, "
               f"{n_neg} with a stock below its declared lower bound, {n_exp} explosions "
               f"(a stock growing more than x{ctx.checks.explosion_factor:g} a year sustained over "
               f"{SUSTAINED_YEARS} years, more than 1.5 times the baseline's own fastest such "
               "growth, to beyond the baseline's peak; a one-off step that then settles is not "
               "a runaway).")
    if not ctx.lower:
        ev.append("No stock declares a lower bound in its units field ([0,?]); negativity not checked.")
    ev += refused
    return Section("extreme", "Extreme conditions", FAIL if table else PASS, summary, ev, table,
                   {"runs": n, "nan": n_nan, "negative": n_neg, "explosions": n_exp,
                    "failures": table})


def _as_runs(params: Mapping, n: int | None) -> tuple[dict, int]:
    """Scalars as per-run arrays, so a division by zero gives inf/NaN as in a per-run
    array (numpy) rather than a Python ZeroDivisionError."""
    n = n or 1
    out = {}
    for k, v in params.items():
        out[k] = np.full(n, float(v)) if np.ndim(v) == 0 and not hasattr(v, "index") else v
    return out, n


def _imposed(ctx: _Context, chk: RealityCheck, base_params: Mapping) -> dict:
    """``base_params`` with the check's impositions on top."""
    params = dict(base_params)
    for k, v in chk.impose.items():
        if isinstance(v, _Scale):
            cur = params.get(k, ctx.cm.defaults[ctx.cm.py_name(k)])
            params[k] = v.factor * np.asarray(cur, float) if np.ndim(cur) else v.factor * float(cur)
        else:
            params[k] = v
    return params


def _run_check(ctx: _Context, chk: RealityCheck, base_params: Mapping | None = None,
               n: int | None = None):
    """Run one check (on top of ``base_params``); return per-condition pass arrays."""
    variables = sorted({c.real for c in chk.expect})
    params, n = _as_runs(_imposed(ctx, chk, base_params or {}), n)
    t, vals = _diag(ctx.cm)(params, n=n, outputs=variables)
    need_base = any(c.kind.endswith("_baseline") for c in chk.expect)
    bvals = None
    if need_base:
        bp, _ = _as_runs(dict(base_params or {}), n)
        _, bvals = _diag(ctx.cm)(bp, n=n, outputs=variables)
    res = []
    for c in chk.expect:
        res.append(evaluate_condition(c, t, vals[c.variable],
                                      bvals[c.variable] if bvals is not None else None))
    return t, vals, res


def _run_checks(ctx: _Context, checks: list[RealityCheck], base_params: Mapping | None = None,
                n: int | None = None, outputs: list[str] = (), progress: bool = False):
    """Run ``base_params`` (``n`` runs) and every check imposed on them in as few ensemble
    calls as fit one chunk (block 0 the base, then one block per check; a run's values do not
    depend on the other runs of its call).

    Returns ``(t, base, results)``: the base block's values of ``outputs`` and of the checks'
    variables, and per check ``(t, vals, res)`` as :func:`_run_check` returns them. A check
    imposing a time series runs on its own (a series is shared by every run of a call).
    """
    from .ensemble import DEFAULT_CHUNK

    base, n = _as_runs(dict(base_params or {}), n)
    variables = sorted({c.real for chk in checks for c in chk.expect})
    together = [c for c in checks if not any(hasattr(v, "index") for v in c.impose.values())]
    if any(hasattr(v, "index") for v in base.values()):
        together = []
    per_call = max(1, DEFAULT_CHUNK // n)
    calls = [[None] + together[:per_call - 1]]  # None: the base block
    calls += [together[i:i + per_call] for i in range(per_call - 1, len(together), per_call)]
    results, base_vals, t = {}, None, None
    for group in calls:
        blocks = [base if c is None else _as_runs(_imposed(ctx, c, base), n)[0] for c in group]
        params = blocks[0] if len(blocks) == 1 else {}
        for k in dict.fromkeys(k for b in blocks for k in b) if len(blocks) > 1 else ():
            default = ctx.cm.defaults[ctx.cm.py_name(k)]
            params[k] = np.concatenate([np.asarray(b[k], float) if k in b else np.full(n, default)
                                        for b in blocks])
        outs = variables + (list(outputs) if group[0] is None else [])
        t, vals = _diag(ctx.cm)(params, n=n * len(blocks), outputs=outs, progress=progress)
        for j, chk in enumerate(group):
            vj = {k: v[j * n:(j + 1) * n] for k, v in vals.items()}
            if chk is None:
                base_vals = vj
                continue
            res = [evaluate_condition(c, t, vj[c.variable], base_vals[c.variable])
                   for c in chk.expect]
            results[chk.name] = (t, vj, res)
    for chk in checks:
        if chk.name not in results:
            results[chk.name] = _run_check(ctx, chk, base_params, n)
    return t, base_vals, [results[c.name] for c in checks]


def _checks_section(ctx: _Context) -> Section:
    ch = ctx.checks
    if ch.path is None or not ch.checks:
        where = checks_path(ctx.path).name
        return Section("checks", "Reality checks", NA,
                       f"None declared (no {where} beside the model).")
    table, ev = [], []
    n_fail = n_xfail = n_xpass = 0
    _, _, runs = _run_checks(ctx, ch.checks)
    for chk, (t, vals, res) in zip(ch.checks, runs):
        failed = [c for c, ok in zip(chk.expect, res) if not bool(ok[0])]
        if failed and chk.expected_failure:
            status = f"expected failure: {chk.expected_failure}"
            n_xfail += 1
        elif failed:
            status = "fail"
            n_fail += 1
        elif chk.expected_failure:
            status = ("unexpected pass: passes although marked as expected failure "
                      f"({chk.expected_failure}); make it a hard check")
            n_xpass += 1
        else:
            status = "pass"
        detail = []
        for c in failed:
            x = vals[c.variable][0]
            i1 = int(np.argmin(np.abs(t - c.end)))
            detail.append(f"{c.describe()}: not so ({c.real} = {x[i1]:.4g} at {t[i1]:g}, "
                          f"{np.nanmin(x):.4g}..{np.nanmax(x):.4g} over the run)")
        imposed = ", ".join(
            f"{k} x {v.factor:g}" if isinstance(v, _Scale) else
            f"{k} = series" if hasattr(v, "index") else f"{k} = {v:g}"
            for k, v in chk.impose.items()) or "baseline"
        table.append({"check": chk.name, "imposed": imposed,
                      "expected": "; ".join(c.describe() for c in chk.expect),
                      "result": status, "why": chk.why})
        if detail:
            ev.append(f"{chk.name}: " + "; ".join(detail))
    ev += [f"{r['check']}: {r['result']}" for r in table if r["result"].startswith("unexpected")]
    summary = (f"{len(ch.checks)} checks from {ch.path.name}: {len(ch.checks) - n_fail - n_xfail} "
               f"hold, {n_fail} fail, {n_xfail} expected failures (named defects), "
               f"{n_xpass} unexpected passes.")
    return Section("checks", "Reality checks", FAIL if n_fail else PASS, summary, ev, table,
                   {"n": len(ch.checks), "failed": n_fail, "expected_failures": n_xfail,
                    "unexpected_passes": [r["check"] for r in table
                                          if r["result"].startswith("unexpected")],
                    "results": table})


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest relative change of ``a`` against the reference ``b`` over time, each point
    relative to ``|b(t)|`` but never to less than 5% of ``b``'s peak (so a variable crossing
    zero does not divide by nothing)."""
    peak = float(np.nanmax(np.abs(b))) if np.any(np.isfinite(b)) else 0.0
    if peak == 0.0:
        return 0.0 if np.allclose(a, b, equal_nan=True) else float("inf")
    d = np.abs(a - b) / np.maximum(np.abs(b), REL_FLOOR * peak)
    return float(np.nanmax(d)) if np.any(np.isfinite(d)) else float("inf")


def _rk4(ctx: _Context, names: list[str], dt: float | None = None):
    """Stocks and flows of an RK4 run by pysimlin on the saved grid (at the model's TIME STEP,
    or at ``dt``), or (None, reason)."""
    try:
        import warnings

        import simlin
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = simlin.load(str(ctx.path))
            m.project.set_sim_specs(sim_method="rk4", **({"dt": dt} if dt else {}))
            df = m.project.main_model.run(analyze_loops=False).results
    except Exception as exc:  # noqa: BLE001 - any pysimlin failure makes RK4 unavailable
        return None, f"pysimlin cannot run this model with RK4 ({type(exc).__name__})"
    import re

    cols = {re.sub(r"[^a-z0-9]+", "_", c.lower()).strip("_"): c for c in df.columns}
    out = {}
    tt = np.asarray(df.index, float)
    for n in names:
        key = re.sub(r"[^a-z0-9]+", "_", ctx.ir.variables[n].real_name.lower()).strip("_")
        if key in cols:
            out[n] = np.interp(ctx.t, tt, df[cols[key]].to_numpy(float))
    return out, f"pysimlin {getattr(simlin, '__version__', '')} RK4 at TIME STEP"


def _bookings(ctx: _Context):
    """Auxiliaries whose equation calls PULSE, PULSE TRAIN or STEP."""
    from .ir import Call, walk

    out = []
    for n in ctx.ir.order:
        v = ctx.ir.variables[n]
        if v.internal or v.expr is None:
            continue
        if any(isinstance(e, Call) and e.func in ("pulse", "pulse_train", "step")
               for e in walk(v.expr)):
            out.append(n)
    return out


def _step_runs(ctx: _Context, names: list[str], books: list[str]):
    """One ensemble run per TIME STEP of the integration test, each saving every step:
    ``names`` on the model's SAVEPER grid at TIME STEP, /2 and /4, and the booking variables
    (``books``) at every step of TIME STEP, /2, /4 and 0.7 x TIME STEP (off the event grid).
    Saving changes no value, so the SAVEPER rows of an every-step run are the run at SAVEPER."""
    from .ensemble import time_grid

    tm = ctx.ir.time
    dt, sp = float(tm.dt), float(tm.saveper)
    runs, bookings = {}, {}
    for label, step, div in (("dt", dt, 1), ("dt/2", dt / 2, 2), ("dt/4", dt / 4, 4),
                             ("0.7 dt", 0.7 * dt, None)):
        outs = (names if div else []) + books
        if not outs:
            continue
        t, v = _diag(ctx.cm)(outputs=outs, time_step=step, saveper=step)
        if div:
            times, every = time_grid(float(tm.initial), float(tm.final), step, step)
            _, keep = time_grid(float(tm.initial), float(tm.final), step, sp)
            if every.all():
                runs[div] = {k: v[k][0][keep] for k in names}
            else:  # a grid on which not every step is saved: run at SAVEPER as asked
                _, v2 = _diag(ctx.cm)(outputs=names, time_step=step, saveper=sp)
                runs[div] = {k: a[0] for k, a in v2.items()}
        for b in books:
            bookings.setdefault(b, {})[label] = float(np.sum(v[b][0][:-1] * np.diff(t)))
    return runs, bookings


def _reads_time_step(ir, name: str, _memo: dict | None = None) -> bool:
    """Whether a variable's equation reads TIME STEP (a drain written per Euler step, such as
    ``MIN(rate, Pending / TIME STEP)``), itself or through the auxiliaries it is computed from
    in the same step: exact under Euler at any step, but RK4's stages give ``x / TIME STEP``
    no meaning as a rate (its value at a stage is not a rate of the continuous system), so RK4
    is no reference for it, nor for a sum that contains it (``Outside equity raised`` adds a
    funding round's drain to other inflows); Euler's dt vs dt/4 still decides. Stocks end the
    walk: they integrate the drain, whose total is exact."""
    from .ir import Ref, walk

    memo = {} if _memo is None else _memo
    if name in memo:
        return memo[name]
    memo[name] = False  # a cycle of auxiliaries cannot occur; guard anyway
    v = ir.variables[name]
    if v.expr is None:
        return False
    if any(isinstance(e, Ref) and e.name == "time_step" for e in walk(v.expr)):
        memo[name] = True
        return True
    out = any(d in ir.variables and ir.variables[d].kind == "aux"
              and _reads_time_step(ir, d, memo) for d in ir.dependencies(name))
    memo[name] = out
    return out


def _integration_section(ctx: _Context) -> Section:
    names = ctx.stocks + ctx.flows
    if not ctx.stocks:
        return Section("integration", "Integration error", NA, "The model has no stocks.")
    dt = float(ctx.ir.time.dt)
    books = _bookings(ctx)
    runs, book_ints = _step_runs(ctx, names, books)
    rk4, rk4_note = _rk4(ctx, names)
    # RK4 is a reference only where it has converged: on smooth dynamics halving its step
    # changes it by ~1/16 of its error; at a STEP/PULSE event, a MIN/MAX switch or a drain
    # written per Euler step its stages straddle the discontinuity, it is only first-order
    # accurate and no better than Euler (docs/model.md, "Third round: validity")
    rk4_half = _rk4(ctx, names, dt / 2)[0] if rk4 else None
    table, flagged = [], []
    unconverged = []
    for n in names:
        kind = "stock" if n in ctx.stocks else "flow"
        tol = STOCK_TOL if kind == "stock" else FLOW_TOL
        e1 = _rel(runs[1][n], runs[4][n])
        e2 = _rel(runs[2][n], runs[4][n])
        er = _rel(runs[1][n], rk4[n]) if rk4 and n in rk4 else None
        self_rk4 = (_rel(rk4[n], rk4_half[n]) if er is not None and rk4_half and n in rk4_half
                    else None)
        ref = (er is not None and (self_rk4 is None or self_rk4 <= RK4_CONVERGED * tol)
               and not _reads_time_step(ctx.ir, n))
        if er is not None and not ref:
            unconverged.append(ctx.ir.variables[n].real_name)
        bad = e1 > tol or (ref and er > tol)
        row = {"variable": ctx.ir.variables[n].real_name, "kind": kind, "dt vs dt/4": e1,
               "dt/2 vs dt/4": e2, "dt vs RK4": er, "RK4 vs RK4 dt/2": self_rk4,
               "flag": "yes" if bad else ""}
        table.append(row)
        if bad:
            flagged.append(row)
    table.sort(key=lambda r: -max(r["dt vs dt/4"], r["dt vs RK4"] or 0.0))
    # one-off bookings
    btable = []
    for n in books:
        ints = book_ints[n]
        ref = ints["dt/4"]
        worst = max(abs(ints[k] - ref) for k in ints) / max(abs(ref), 1e-12)
        row = {"variable": ctx.ir.variables[n].real_name, "units": ctx.ir.variables[n].units,
               **{f"integral at {k}": val for k, val in ints.items()}, "largest change": worst,
               "flag": "yes" if worst > BOOKING_TOL else ""}
        btable.append(row)
    bflag = [r for r in btable if r["flag"]]
    ev = [f"RK4: {rk4_note}" if rk4 else f"RK4 not compared: {rk4_note}"]
    if unconverged:
        ev.append(f"RK4 not a reference (it changes by more than {RK4_CONVERGED:g} of the "
                  "tolerance when its step is halved: an event or switch it cannot resolve; or "
                  "the equation reads TIME STEP, a drain written per Euler step; "
                  f"Euler's dt vs dt/4 decides) for {len(unconverged)}: "
                  + ", ".join(unconverged[:12]) + (" ..." if len(unconverged) > 12 else ""))
    for r in flagged[:15]:
        ev.append(f"{r['kind']} {r['variable']}: dt vs dt/4 {100 * r['dt vs dt/4']:.2g}%"
                  + (f", dt vs RK4 {100 * r['dt vs RK4']:.2g}%" if r["dt vs RK4"] is not None else ""))
    for r in bflag:
        ev.append(f"booking {r['variable']} ({r['units']} integrated over the run) changes by "
                  f"{100 * r['largest change']:.2g}% with TIME STEP: "
                  + ", ".join(f"{k[12:]} {r[k]:.4g}" for k in r if k.startswith("integral at")))
    summary = (f"{len(ctx.stocks)} stocks and {len(ctx.flows)} flows at TIME STEP {dt:g}, /2, /4"
               f"{' and RK4' if rk4 else ''}: {sum(r['kind'] == 'stock' for r in flagged)} stocks "
               f"above {100 * STOCK_TOL:g}%, {sum(r['kind'] == 'flow' for r in flagged)} flows above "
               f"{100 * FLOW_TOL:g}% (largest change relative to the value, floored at "
               f"{100 * REL_FLOOR:g}% of the variable's peak); "
               f"{len(books)} PULSE/STEP bookings, {len(bflag)} whose size changes with TIME STEP "
               f"by more than {100 * BOOKING_TOL:g}% (TIME STEP, /2, /4 and 0.7x, off the event grid).")
    status = FAIL if (flagged or bflag) else PASS
    return Section("integration", "Integration error", status, summary, ev, table[:25],
                   {"variables": table, "bookings": btable, "rk4": bool(rk4),
                    "rk4_note": rk4_note, "rk4_unconverged": unconverged, "dt": dt})


def _loop_section(ctx: _Context) -> Section:
    from . import loops as L
    from .ir import Evaluator

    named_file = ctx.checks.named_loops or ctx.path.parent / "named_loops.yaml"
    if not Path(named_file).is_file():
        return Section("loops", "Loop activity", NA, "No named loops declared "
                       f"({Path(named_file).name} not found beside the model).")
    named = L.load_named_loops(named_file)
    stem = ctx.path.stem
    mine = {k: v for k, v in named.items()
            if isinstance(v.get("key_variables"), dict) and v["key_variables"].get(stem)}
    if not mine:
        return Section("loops", "Loop activity", NA,
                       f"No named loops declared for {stem} in {Path(named_file).name}.")
    ir = ctx.ir
    all_stocks = list(ir.stocks)
    mid = 0.5 * (ir.time.initial + ir.time.final)

    def states(params):
        t, v = _diag(ctx.cm)(_as_runs(params, 1)[0], n=1, outputs=all_stocks)
        return t, [{s: float(v[s][0, k]) for s in all_stocks} for k in range(len(t))]

    t, sts = states({})
    k_mid = int(np.argmin(np.abs(t - mid)))
    # cycles up to the shortest length bound at which every named loop matches a cycle
    # (all 178k cycles of a big model are slow)
    point = (float(t[k_mid]), sts[k_mid])
    rep = L.find_named_loops(ir, mine, point=point)
    match, bound = rep.named, rep.length_bound
    scenario_params = {}
    if ctx.checks.scenarios is not None:
        from .scenarios import load_scenarios, to_params
        try:
            for name in sorted(load_scenarios(ctx.checks.scenarios)):
                scenario_params[name] = to_params(name, ctx.checks.scenarios, ctx.path)
        except ScenarioError as exc:
            raise ChecksError(f"scenarios for loop activity: {exc}") from None

    def cycles_of(lid):
        """A loop's cycles (at most 2000, shortest first) as rows of edge indices."""
        keys = set(ir.resolve(k) for k in mine[lid]["key_variables"][stem])
        cycles = sorted((lp.variables for lp in rep.loops if keys <= set(lp.variables)), key=len)
        cycles = cycles[:2000]
        if not cycles:
            return [], None
        edges = sorted({(c[i], c[(i + 1) % len(c)]) for c in cycles for i in range(len(c))})
        index = {e: j for j, e in enumerate(edges)}
        idx = np.full((len(cycles), max(len(c) for c in cycles)), len(edges))  # padding: true slot
        for r, c in enumerate(cycles):
            idx[r, :len(c)] = [index[(c[i], c[(i + 1) % len(c)])] for i in range(len(c))]
        return edges, idx

    structure = {lid: cycles_of(lid) for lid in match if not match[lid].get("missing")}
    # link gains depend on the run and the time only: the model is evaluated once per run
    # (baseline or scenario) and saved time, and each edge's gain there is computed at most
    # once, when a loop needs it, and shared by every loop through the edge
    runs = {None: (t, sts)}
    points: dict = {}

    def scenario_states():
        """Stocks of every scenario with changes, in one ensemble call: a scenario's time series
        enter as columns of one table on the run's time grid, interpolated there as the
        engine interpolates a series (so each run is the scenario's run alone)."""
        import pandas as pd

        from .ensemble import time_grid
        from .params import CONTROL_NAMES

        names = [s for s, p in scenario_params.items() if p and s not in runs]
        py = {s: {ctx.cm.py_name(k): v for k, v in scenario_params[s].items()} for s in names}
        if len(names) < 2 or any(k.strip().upper() in CONTROL_NAMES
                                 for s in names for k in scenario_params[s]):
            for s in names:
                runs[s] = states(scenario_params[s])
            return
        tm = ir.time
        times, _ = time_grid(float(tm.initial), float(tm.final), float(tm.dt), float(tm.saveper))
        params = {}
        for k in dict.fromkeys(k for s in names for k in py[s]):
            vals = [py[s].get(k, ctx.cm.defaults[k]) for s in names]
            if any(hasattr(v, "index") for v in vals):
                params[ctx.cm.real_name(k)] = pd.DataFrame(np.column_stack([
                    np.interp(times, np.asarray(v.index, float), np.asarray(v.values, float))
                    if hasattr(v, "index") else np.full(times.size, float(v)) for v in vals]),
                    index=times)
            else:
                params[ctx.cm.real_name(k)] = np.array([float(v) for v in vals])
        tt, v = _diag(ctx.cm)(params, n=len(names), outputs=all_stocks)
        for j, s in enumerate(names):
            runs[s] = (tt, [{x: float(v[x][j, k]) for x in all_stocks} for k in range(len(tt))])

    def run_of(sname):
        key = sname if sname is not None and scenario_params[sname] else None  # no change: baseline
        if key not in runs:
            scenario_states()
        if key not in points:
            points[key] = (Evaluator(ir, scenario_params.get(key) or None),
                           [None] * len(runs[key][0]))
        return runs[key], points[key]

    def active_at(ev_, memo, k, tk, state, edges, idx):
        """Whether some cycle has every link gain non-zero at saved time ``tk``: the alive
        cycle (no known zero gain) with fewest unknown gains is completed first, so a gain
        that is zero in every cycle ends the search after a few edges."""
        if memo[k] is None:
            with np.errstate(all="ignore"):
                memo[k] = (ev_.env_at(float(tk), state), {})
        env, known = memo[k]
        code = np.array([2 if e not in known else
                         int(known[e] != 0 and np.isfinite(known[e])) for e in edges] + [1])
        while True:
            c = code[idx]
            alive = ~(c == 0).any(axis=1)
            if not alive.any():
                return False
            unknown = (c == 2).sum(axis=1)
            if (alive & (unknown == 0)).any():
                return True
            r = int(np.argmin(np.where(alive, unknown, np.iinfo(np.int64).max)))
            todo = sorted({int(j) for j in idx[r] if code[j] == 2})
            known.update(L.edge_gains(ir, env, float(tk), ev_.time.dt,
                                      [edges[j] for j in todo]))
            for j in todo:
                gj = known[edges[j]]
                code[j] = int(gj != 0 and np.isfinite(gj))

    def activity(lid, sname):
        edges, idx = structure[lid]
        if not edges:
            return np.zeros(len(t), bool), 0
        (tt, ss), (ev_, memo) = run_of(sname)
        return np.array([active_at(ev_, memo, k, tk, ss[k], edges, idx)
                         for k, tk in enumerate(tt)], bool), len(idx)

    table, ev, data = [], [], {}
    never = []
    for lid, m in match.items():
        if m.get("missing"):
            table.append({"loop": lid, "name": m["name"], "expected": m["expected"],
                          "polarity": "", "cycles": 0, "active share": 0.0,
                          "note": "key variables missing: " + ", ".join(m["missing"])})
            never.append(lid)
            continue
        act, ncyc = activity(lid, None)
        share = float(act.mean()) if act.size else 0.0
        note = ""
        if share == 0 and scenario_params:
            for sname in scenario_params:
                a2, _ = activity(lid, sname)
                if a2.any():
                    note = f"inactive in the baseline; active in scenario {sname} ({a2.mean():.0%})"
                    break
            else:
                note = f"never active in the baseline or {len(scenario_params)} scenarios"
        elif share == 0:
            note = "never active in the baseline"
        if share == 0 and not note.startswith("inactive in the baseline; active"):
            never.append(lid)
        if m.get("polarity") and m["polarity"] != m["expected"]:
            note = (note + "; " if note else "") + (f"polarity {m['polarity']} at {t[k_mid]:g}, "
                                                    f"expected {m['expected']}")
        table.append({"loop": lid, "name": m["name"], "expected": m["expected"],
                      "polarity": m.get("polarity") or "", "cycles": ncyc,
                      "active share": share, "note": note})
        data[lid] = {"active": act.tolist(), "share": share, "cycles": ncyc}
    ev += [f"{r['loop']} ({r['name']}): {r['note']}" for r in table if r["note"]]
    summary = (f"{len(table)} named loops of {stem}; polarity from link gains at {t[k_mid]:g}; "
               "a loop is active when at least one of its cycles (through its key variables, "
               f"{'at most ' + str(bound) if bound else 'any'} variables long) has every link "
               "gain non-zero (saved times of the baseline). Never active: "
               f"{', '.join(never) or 'none'}.")
    return Section("loops", "Loop activity", FAIL if never else PASS, summary, ev, table,
                   {"times": t.tolist(), "loops": data, "never_active": never})


def calibration_constraints(ctx: _Context) -> tuple[dict | None, str]:
    """Which parameters the calibration constrains.

    Reads ``results/calibration/posterior.csv`` (what ``aicarousel calibrate`` writes) when its
    provenance names this model's hash, else the ``posterior_*`` columns that ``aicarousel
    calibrate --record-table`` writes into the declared parameter table. A parameter is
    constrained when its posterior 90% interval is narrower than
    :data:`aicarousel.calibrate.CONSTRAINED_RATIO` times its prior's (uniform on the table's
    range), the rule the calibration's own posterior table applies.

    Returns
    -------
    (ratios, source) : tuple
        ``{parameter: width ratio}`` of the estimated parameters and a sentence naming where
        they come from; ``(None, reason)`` when no calibration of this model is found.
    """
    import pandas as pd

    from . import paths

    notes = []
    post = paths.RESULTS_DIR / "calibration" / "posterior.csv"
    if post.is_file():
        first = post.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        try:
            prov = json.loads(first.split("provenance:", 1)[1])
        except (IndexError, ValueError):
            prov = {}
        if prov.get("model_hash") == ctx.cm.model_hash:
            df = pd.read_csv(post, comment="#")
            ratios = {str(r["parameter"]): float(r["width_ratio"]) for _, r in df.iterrows()}
            conv = "" if str(prov.get("converged", "true")) == "true" else (
                "; its chains did NOT converge, so these are provisional")
            return ratios, (f"posterior of results/calibration/{post.name} (created "
                            f"{prov.get('created', '?')}{conv})")
        notes.append(f"results/calibration/{post.name} is of another version of the model")
    if ctx.checks.parameters is not None:
        from .params import read_table

        table = read_table(ctx.checks.parameters)
        if {"posterior_p5", "posterior_p95"} <= set(table.columns):
            p5 = pd.to_numeric(table["posterior_p5"], errors="coerce")
            p95 = pd.to_numeric(table["posterior_p95"], errors="coerce")
            done = p5.notna() & p95.notna()
            if done.any():
                prior90 = 0.9 * (table["high"] - table["low"])
                ratios = {str(n): float((p95[n] - p5[n]) / prior90[n])
                          for n in table.index[done]}
                run = next((str(r) for r in table.loc[done, "posterior_run"]
                            if str(r).strip()), "") if "posterior_run" in table else ""
                return ratios, (f"posterior_* columns of {ctx.checks.parameters.name}"
                                + (f" ({run})" if run else ""))
    return None, "; ".join(notes + ["no calibration found: run `aicarousel calibrate`"])


def _parameter_section(ctx: _Context) -> Section:
    if not ctx.space:
        return Section("parameters", "Parameter assessment", NA, "The model has no constants to assess.")
    from .calibrate import CONSTRAINED_RATIO

    ratios, source = calibration_constraints(ctx)
    if ratios is None:
        calib = f"Constrained by the calibration: {source}."
    else:
        names = [r["name"] for r in ctx.space]
        est = [n for n in names if n in ratios]
        tight = [n for n in est if ratios[n] < CONSTRAINED_RATIO]
        loose = [n for n in est if n not in tight]
        calib = (f"Constrained by the calibration ({source}; posterior 90% interval narrower "
                 f"than {CONSTRAINED_RATIO:g} of the prior's): {len(tight)} of {len(est)} "
                 f"estimated parameters: {', '.join(tight) or 'none'}; at the prior: "
                 f"{', '.join(loose) or 'none'}; {len(names) - len(est)} constants not "
                 "estimated.")
    ev, table = [], []
    if ctx.checks.parameters is not None:
        from .params import check_table
        problems = check_table(ctx.checks.parameters, ctx.path)
        ev += problems
        n_src = sum(1 for r in ctx.space if r["source"].strip())
        own = sum(1 for r in ctx.space if "own" in r["source"].lower())
        summary = (f"{len(ctx.space)} constants in {ctx.checks.parameters.name}: "
                   f"{len(problems)} problem(s) (value outside [low, high], missing source or "
                   f"range basis, table and model disagree); {n_src} with a source, {own} of them "
                   f"own assumptions or estimates. {calib}")
        status = FAIL if problems else PASS
    else:
        for r in ctx.space:
            if not r["low"] <= r["value"] <= r["high"]:
                ev.append(f"{r['name']}: value {r['value']:g} outside [{r['low']:g}, {r['high']:g}]")
        summary = (f"{len(ctx.space)} constants; no parameter table declared, so ranges are the "
                   "model's own ([min,max] in the units field, else 0.5x-2x) and sources are not "
                   f"assessed (none declared). {calib}")
        status = FAIL if ev else PASS
    for r in ctx.space:
        if ratios is None:
            cal = "no calibration"
        elif r["name"] not in ratios:
            cal = "not estimated"
        else:
            q = ratios[r["name"]]
            cal = f"{'constrained' if q < CONSTRAINED_RATIO else 'prior'} (width ratio {q:.2f})"
        table.append({"parameter": r["name"], "value": r["value"], "low": r["low"],
                      "high": r["high"], "role": r["role"], "source": r["source"] or "none declared",
                      "calibration": cal})
    return Section("parameters", "Parameter assessment", status, summary, ev, table,
                   {"problems": ev, "parameters": table,
                    "calibration": {"source": source, "threshold": CONSTRAINED_RATIO,
                                    "width_ratios": ratios}})


def _reproduction_section(ctx: _Context) -> Section:
    from .calibration import compare, read_targets

    files = [(k, getattr(ctx.checks, k)) for k in ("calibration_targets", "out_of_sample_targets")]
    files = [(k, f) for k, f in files if f is not None]
    if not files:
        return Section("reproduction", "Behaviour reproduction", NA,
                       "No calibration or out-of-sample targets declared.")
    table, ev = [], []
    for label, f in files:
        targets = read_targets(f)
        for v in sorted(set(targets["variable"])):
            try:
                ctx.cm.py_name(v, what="target variable")
            except AicarouselError as exc:
                raise ChecksError(f"{f.name}: {exc}") from None
        dt = float(ctx.ir.time.dt)
        ds = ctx.cm.run(outputs=sorted(set(targets["variable"])), saveper=dt).isel(run=0)
        cmp = compare(ds, targets)
        for tid, r in cmp.iterrows():
            table.append({"set": "calibration" if label.startswith("cal") else "out of sample",
                          "target": r["what"], "period": r["period"], "data": r["data"],
                          "model": r["model"], "unit": r["unit"], "error": r["error"],
                          "tolerance": r["tolerance"], "pass": "yes" if r["pass"] else "no"})
    n_fail = sum(r["pass"] == "no" for r in table)
    summary = (f"{len(table)} targets: {len(table) - n_fail} within tolerance, {n_fail} outside "
               "(error relative to the data).")
    if ctx.checks.out_of_sample_targets is None:
        ev.append("Out-of-sample targets: none declared.")
    return Section("reproduction", "Behaviour reproduction", FAIL if n_fail else PASS, summary,
                   ev, table, {"targets": table})


def _random_section(ctx: _Context) -> Section:
    unc = [r for r in ctx.space if r["role"] == "uncertain" and r["high"] > r["low"]]
    if not unc:
        return Section("random", "Random in-range runs", NA, "No uncertain parameters with a range.")
    n = 200 if ctx.quick else 1000
    rng = np.random.default_rng(ctx.seed)
    sample = {r["name"]: rng.uniform(r["low"], r["high"], n) for r in unc}
    hard = [c for c in ctx.checks.checks if not c.expected_failure]
    t, vals, runs = _run_checks(ctx, hard, sample, n, outputs=ctx.stocks, progress=ctx.progress)
    flags = _flags(ctx, t, vals, float("inf"), n)  # explosions are not failures in range
    for chk, (_, _, res) in zip(hard, runs):
        ok = np.logical_and.reduce(res)
        for i in np.flatnonzero(~ok):
            flags[i].append(f"reality check {chk.name} fails")
    failures = []
    for i in range(n):
        if flags[i]:
            p = {k: float(v[i]) for k, v in sample.items()}
            sets = " ".join(f'--set "{k}={v:.10g}"' for k, v in p.items())
            failures.append({"run": i, "problems": flags[i], "params": p,
                             "replay": f"aicarousel run --model {ctx.path.name} {sets}"})
    kinds = {"nan": sum(any(f == "nan" for f in x["problems"]) for x in failures),
             "negative": sum(any(f.startswith("negative") for f in x["problems"]) for x in failures),
             "reality check": sum(any(f.startswith("reality") for f in x["problems"])
                                  for x in failures)}
    table = [{"run": f["run"], "problems": "; ".join(f["problems"][:3])} for f in failures[:30]]
    summary = (f"{n} parameter sets drawn uniformly inside the ranges of {len(unc)} uncertain "
               f"parameters (seed {ctx.seed}): {len(failures)} ({len(failures) / n:.1%}) fail: "
               f"{kinds['nan']} NaN/inf, {kinds['negative']} negative stocks, "
               f"{kinds['reality check']} failing one of {len(hard)} hard reality checks. "
               "Every failing set is listed with a replay command in the JSON report.")
    ev = [f"run {f['run']}: {f['replay']}" for f in failures[:3]]
    return Section("random", "Random in-range runs", FAIL if failures else PASS, summary, ev,
                   table, {"n": n, "seed": ctx.seed, "share_failed": len(failures) / n,
                           "counts": kinds, "failures": failures})


SECTIONS = [_units_section, _extreme_section, _checks_section, _integration_section,
            _loop_section, _parameter_section, _reproduction_section, _random_section]


def validate(model_file: str | os.PathLike | None = None, *, checks_file=None, quick: bool = False,
             seed: int = 20251201, progress: bool = False) -> Report:
    """Run every section on a model and return the :class:`Report`.

    Parameters
    ----------
    model_file : path, optional
        Vensim .mdl or XMILE file (default the carousel).
    checks_file : path, optional
        Default ``<model dir>/<model stem>.checks.yaml`` (none: checks "none declared").
    quick : bool
        200 random runs instead of 1,000 (for CI).
    seed : int
        Seed of the random in-range runs.
    progress : bool
        tqdm bars over the sections.

    Raises
    ------
    aicarousel.errors.AicarouselError
        Unsupported model (UnsupportedFeatureError), bad checks file (ChecksError), ...
    """
    from . import paths
    from .plotting import git_commit

    start = _time.perf_counter()
    path = Path(model_file) if model_file is not None else paths.MODEL_FILE
    ctx = _Context(path, checks_file, quick, seed, progress)
    sections = []
    it = SECTIONS
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(SECTIONS, desc="validate", unit="test")
    for fn in it:
        sections.append(fn(ctx))
    prov = {"git_commit": git_commit(), "model_hash": ctx.cm.model_hash, "seed": str(seed),
            "checks_file": ctx.checks.path.name if ctx.checks.path else "none",
            "quick": str(quick)}
    return Report(path.name, ctx.cm.model_hash, quick, sections, prov,
                  _time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def check_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and prove a file can be written there (before running)."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".validate-probe-{uuid.uuid4().hex[:8]}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"report directory {d} is not writable ({exc.strerror}); give "
                          "--report DIR somewhere you can write") from None
    return d


def figure(report: Report):
    """Integration error (a) and loop activity (b) at a glance."""
    from . import plotting

    plotting.use_style()
    fig, (a, b) = plotting.figure("double", height=2.8, ncols=2)
    integ = report.section("integration").data.get("variables", [])
    rows = sorted(integ, key=lambda r: -max(r["dt vs dt/4"], r["dt vs RK4"] or 0))[:12][::-1]
    if rows:
        y = np.arange(len(rows))
        a.barh(y, [100 * r["dt vs dt/4"] for r in rows], height=0.4, label="TIME STEP vs /4")
        if any(r["dt vs RK4"] is not None for r in rows):
            a.barh(y + 0.4, [100 * (r["dt vs RK4"] or 0) for r in rows], height=0.4,
                   label="TIME STEP vs RK4")
        a.set_yticks(y + 0.2, [r["variable"][:34] for r in rows])
        a.axvline(100 * STOCK_TOL, color="0.3", lw=0.6, ls="--")
        a.axvline(100 * FLOW_TOL, color="0.3", lw=0.6, ls=":")
        a.set_xscale("symlog", linthresh=0.1)
        a.set_xlabel("Largest relative change (%)")
        plotting.legend(a, loc="lower right")
    else:
        a.text(0.5, 0.5, "no stocks", ha="center", transform=a.transAxes)
    loops = report.section("loops").table
    if loops:
        y = np.arange(len(loops))
        b.barh(y, [100 * float(r["active share"]) for r in loops])
        b.set_yticks(y, [f"{r['loop']} ({r['polarity'] or '-'})" for r in loops])
        b.set_xlim(0, 100)
        b.set_xlabel("Share of baseline with the loop active (%)")
        b.invert_yaxis()
    else:
        b.text(0.5, 0.5, "no named loops", ha="center", transform=b.transAxes)
    plotting.panel_letters([a, b])
    return fig


def write_report(report: Report, directory: str | os.PathLike) -> list[Path]:
    """Write ``validation.{md,tex,json}`` and ``validation.{pdf,png}`` into ``directory``.

    All files are written into a staging directory first and then renamed into place, so a
    failure leaves none of them (and nothing else in ``directory`` is touched).
    """
    from . import atomic, plotting

    d = check_writable(directory)
    stage = d / f".validate-{uuid.uuid4().hex[:8]}"
    try:
        stage.mkdir()
        atomic.write_text(stage / "validation.md", report.to_markdown())
        atomic.write_text(stage / "validation.tex", report.to_latex())
        atomic.write_text(stage / "validation.json", report.to_json())
        fig = figure(report)
        plotting.savefig(fig, "validation", {**report.provenance, "scenario": "baseline"},
                         directory=stage)
        out = []
        for f in sorted(stage.iterdir()):
            os.replace(f, d / f.name)
            out.append(d / f.name)
        return out
    except OSError as exc:
        raise OutputError(f"cannot write the report into {d}: {exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
