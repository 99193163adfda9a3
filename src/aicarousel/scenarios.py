"""Policy and stress scenarios written as YAML files in ``scenarios/``.

A scenario file looks like::

    name: funding_stop                 # must equal the file stem
    description: >
      Outside investors stop funding Lab in mid-2026 ...
    extends: baseline                  # optional parent scenario
    params:                            # constant overrides, by Vensim name
      Credit spread shock: 0.0092
    interventions:                     # time-varying overrides, by Vensim name
      - variable: Outside funding availability
        type: step                     # value jumps at `at`
        at: 2026.5                     # decimal year or a date (2026-07-01)
        to: 0                          # new value (or `scale:` times the old one)
      - variable: AI demand multiplier
        type: ramp                     # linear change from `start` to `end`
        start: 2026
        end: 2028
        scale: 0.5
      - variable: Credit spread shock
        type: table                    # piecewise-linear (year, value) points
        points: [[2025.4, 0], [2025.9, 0.0092]]

:func:`to_params` turns a scenario (its ``extends`` chain merged, parent
first) into the ``params`` dict :func:`aicarousel.model.run` takes: floats for
constants, :class:`pandas.Series` indexed by year for interventions (PySD
interpolates them linearly and holds the end values flat).

All files are validated before anything runs (:func:`validate_all`): unknown
variable names (with the closest match), dates outside the run, ``extends``
cycles or missing parents, wrong types and values outside a constant's
declared range raise :class:`aicarousel.errors.ScenarioError` naming the file
and the key.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import yaml

from . import paths, scenario_schema
from .errors import ScenarioError
from .params import short, suggest

#: Keys allowed at the top level of a scenario file.
TOP_KEYS = ("name", "description", "extends", "params", "interventions")
#: Intervention types and the keys each one takes (besides ``variable`` and ``type``).
INTERVENTION_KEYS = {
    "step": {"at", "to", "scale"},
    "ramp": {"start", "end", "to", "scale"},
    "table": {"points"},
}
#: Offset (years) before a step date at which the old value still holds; far below TIME STEP.
STEP_EPSILON = 1e-9


# --------------------------------------------------------------------------- model facts
@dataclass(frozen=True)
class ModelFacts:
    """What scenario validation needs to know about the model.

    Attributes
    ----------
    constants : dict of str to float
        Constant values by Vensim name (the baseline values of the levers).
    limits : dict of str to tuple
        Declared ``[min, max]`` range of each constant (``None`` = open).
    units : dict of str to str
        Units of each constant.
    variables : frozenset of str
        Every Vensim name in the model (for "is an equation, not a constant" errors).
    initial_time, final_time : float
        Run window (years).
    params : aicarousel.params.ParameterFacts
        The IR facts the one parameter validator checks values against.
    """

    constants: dict
    limits: dict
    units: dict
    variables: frozenset
    initial_time: float
    final_time: float
    params: Any = None


def _number(ast: Any) -> float | None:
    if isinstance(ast, bool):
        return None
    if isinstance(ast, (int, float)):
        return float(ast)
    return None


@functools.lru_cache(maxsize=8)
def _model_facts_cached(path: str, mtime: float, size: int) -> ModelFacts:
    from .params import facts as _param_facts

    fx = _param_facts(path)
    constants = {n: c.value for n, c in fx.constants.items()}
    limits = {n: (None if math.isnan(c.low) else c.low, None if math.isnan(c.high) else c.high)
              for n, c in fx.constants.items()}
    units = {n: c.unit for n, c in fx.constants.items()}
    return ModelFacts(constants, limits, units, frozenset(fx.kinds), fx.initial_time,
                      fx.final_time, fx)


def model_facts(model_file: str | os.PathLike | None = None) -> ModelFacts:
    """Constants, their ranges and the run window of a model, parsed once per file version.

    Parameters
    ----------
    model_file : path, optional
        Vensim model; default ``models/ai_carousel.mdl``.

    Returns
    -------
    ModelFacts
    """
    path = Path(model_file) if model_file is not None else paths.MODEL_FILE
    st = path.stat()
    return _model_facts_cached(str(path.resolve()), st.st_mtime, st.st_size)


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class Intervention:
    """A time-varying override of one constant.

    Attributes
    ----------
    variable : str
        Vensim name of the constant.
    type : {"step", "ramp", "table"}
    at : float or None
        Step date (year).
    start, end : float or None
        Ramp window (years).
    to : float or None
        Value after the step/ramp (model units).
    scale : float or None
        Alternative to ``to``: multiply the value in force just before the change.
    points : tuple of (float, float)
        Table points (year, value).
    """

    variable: str
    type: str
    at: float | None = None
    start: float | None = None
    end: float | None = None
    to: float | None = None
    scale: float | None = None
    points: tuple = ()


@dataclass
class Scenario:
    """One scenario file as written (before ``extends`` is merged).

    Attributes
    ----------
    name : str
    description : str
    extends : str or None
    params : dict of str to float
    interventions : list of Intervention
    path : pathlib.Path or None
    """

    name: str
    description: str = ""
    extends: str | None = None
    params: dict = field(default_factory=dict)
    interventions: list = field(default_factory=list)
    path: Path | None = None

    @property
    def source(self) -> str:
        """File name used in error messages."""
        return self.path.name if self.path is not None else f"<scenario {self.name}>"


# --------------------------------------------------------------------------- parsing
def _year(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a year (e.g. 2026.5 or 2026-07-01), got {short(repr(value), 80)}")
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        start = _dt.date(value.year, 1, 1)
        days = (_dt.date(value.year + 1, 1, 1) - start).days
        return value.year + (value - start).days / days
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return _year(_dt.date.fromisoformat(value.strip()), where)
        except ValueError:
            pass
    raise ScenarioError(f"{where}: expected a year (e.g. 2026.5 or 2026-07-01), got {short(repr(value), 80)}")


def _value(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{where}: expected a finite number, got {short(repr(value), 80)} ({type(value).__name__})")
    return float(value)


def _parse_intervention(raw: Any, where: str) -> Intervention:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: expected a mapping with 'variable' and 'type', got {short(repr(raw), 80)}")
    var = raw.get("variable")
    if not isinstance(var, str) or not var.strip():
        raise ScenarioError(f"{where}.variable: expected a Vensim variable name, got {short(repr(var), 80)}")
    kind = raw.get("type")
    if kind not in INTERVENTION_KEYS:
        raise ScenarioError(
            f"{where}.type: expected one of {', '.join(INTERVENTION_KEYS)}, got {short(repr(kind), 80)}"
        )
    extra = set(raw) - INTERVENTION_KEYS[kind] - {"variable", "type"}
    if extra:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))} for a {kind} "
            f"(allowed: {', '.join(sorted(INTERVENTION_KEYS[kind]))})"
        )
    kw: dict[str, Any] = {"variable": var.strip(), "type": kind}
    if kind in ("step", "ramp"):
        if ("to" in raw) == ("scale" in raw):
            raise ScenarioError(f"{where}: give exactly one of 'to' (new value) or 'scale' (factor)")
        if "to" in raw:
            kw["to"] = _value(raw["to"], f"{where}.to")
        else:
            kw["scale"] = _value(raw["scale"], f"{where}.scale")
    if kind == "step":
        if "at" not in raw:
            raise ScenarioError(f"{where}: a step needs 'at' (the year it happens)")
        kw["at"] = _year(raw["at"], f"{where}.at")
    elif kind == "ramp":
        for key in ("start", "end"):
            if key not in raw:
                raise ScenarioError(f"{where}: a ramp needs '{key}' (a year)")
            kw[key] = _year(raw[key], f"{where}.{key}")
        if kw["end"] <= kw["start"]:
            raise ScenarioError(f"{where}: ramp end {kw['end']} must be after start {kw['start']}")
    else:
        pts = raw.get("points")
        if not isinstance(pts, list) or not pts:
            raise ScenarioError(f"{where}.points: expected a list of [year, value] pairs")
        parsed = []
        for i, p in enumerate(pts):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise ScenarioError(f"{where}.points[{i}]: expected [year, value], got {short(repr(p), 80)}")
            parsed.append((_year(p[0], f"{where}.points[{i}]"), _value(p[1], f"{where}.points[{i}]")))
        years = [p[0] for p in parsed]
        if any(b <= a for a, b in zip(years, years[1:])):
            raise ScenarioError(f"{where}.points: years must increase strictly, got {years}")
        kw["points"] = tuple(parsed)
    return Intervention(**kw)


def parse_scenario(data: Any, path: str | os.PathLike | None = None) -> Scenario:
    """Check the types of one scenario document and build a :class:`Scenario`.

    Parameters
    ----------
    data : mapping
        The YAML document.
    path : path, optional
        File it came from (named in errors; its stem must equal ``name``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        On a wrong type, a missing or unknown key.
    """
    p = Path(path) if path is not None else None
    src = p.name if p is not None else "<scenario>"
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{src}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    extra = [k for k in data if k not in TOP_KEYS]
    if extra:
        close = suggest(extra[0], TOP_KEYS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(TOP_KEYS)})"
        raise ScenarioError(f"{src}: unknown key {short(repr(extra[0]), 80)}{hint}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{src}: key 'name' must be a non-empty string, got {name!r}")
    if p is not None and name != p.stem:
        raise ScenarioError(f"{src}: key 'name' is {name!r} but must equal the file name stem {p.stem!r}")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ScenarioError(f"{src}: key 'description' must be text, got {type(desc).__name__}")
    ext = data.get("extends")
    if ext is not None and not (isinstance(ext, str) and ext.strip()):
        raise ScenarioError(f"{src}: key 'extends' must be a scenario name, got {ext!r}")
    params_raw = data.get("params") or {}
    if not isinstance(params_raw, Mapping):
        raise ScenarioError(f"{src}: key 'params' must map Vensim names to numbers, got {type(params_raw).__name__}")
    params = {}
    for k, v in params_raw.items():
        if not isinstance(k, str):
            raise ScenarioError(f"{src}: params key {k!r} must be a Vensim variable name")
        params[k.strip()] = _value(v, f"{src}: params['{k}']")
    iv_raw = data.get("interventions") or []
    if not isinstance(iv_raw, list):
        raise ScenarioError(f"{src}: key 'interventions' must be a list, got {type(iv_raw).__name__}")
    ivs = [_parse_intervention(r, f"{src}: interventions[{i}]") for i, r in enumerate(iv_raw)]
    return Scenario(name=name, description=desc.strip(), extends=ext, params=params,
                    interventions=ivs, path=p)


#: Largest scenario file read (bytes).
MAX_SCENARIO_BYTES = 1_000_000
#: YAML aliases (``*name``) allowed in one scenario file: enough to reuse a few values, far
#: too few for an alias bomb (each level of ``[*a, *a, ...]`` multiplies the expansion).
MAX_YAML_ALIASES = 20


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys, alias bombs and impossible dates."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_YAML_ALIASES} aliases (*name); write the "
                    "values out", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the constructor reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {short(repr(key), 80)} (first at line "
                        f"{first.line + 1}); give it once", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"impossible date {node.value!r} ({exc})", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document safely (see :class:`_Loader`); errors name file and line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{source}: not valid YAML{at}: "
                            f"{short(getattr(exc, 'problem', None) or exc, 200)}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply") from None


def read_scenario_file(path: str | os.PathLike) -> Scenario:
    """Read and type-check one YAML scenario file.

    Parameters
    ----------
    path : path
        ``scenarios/<name>.yaml``.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If the file is missing, not valid YAML, or malformed.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"{p.name}: cannot read scenario file ({exc.strerror})") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{p.name}: larger than {MAX_SCENARIO_BYTES:,} bytes; a scenario "
                            "file is a few lines of YAML")
    if b"\0" in raw:
        raise ScenarioError(f"{p.name}: a binary file (NUL byte at offset {raw.index(0)}), not "
                            "a YAML scenario")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ScenarioError(f"{p.name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line "
                            f"{line}); save the file as UTF-8") from None
    data = load_yaml(text, p.name)
    scenario = parse_scenario(data, p)
    scenario_schema.check(data, p.name)  # a file we accept is one the published schema accepts
    return scenario


def scenario_files(scenarios_dir: str | os.PathLike | None = None) -> list[Path]:
    """Sorted scenario files (``*.yaml``, ``*.yml``) of a directory."""
    d = Path(scenarios_dir) if scenarios_dir is not None else paths.SCENARIOS_DIR
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")])


def load_scenarios(scenarios_dir: str | os.PathLike | None = None) -> dict[str, Scenario]:
    """Read every scenario file of a directory (type checks only; see :func:`validate_all`).

    Parameters
    ----------
    scenarios_dir : path, optional
        Default ``scenarios/``.

    Returns
    -------
    dict of str to Scenario
        By name, baseline first, then alphabetical.
    """
    out: dict[str, Scenario] = {}
    for f in scenario_files(scenarios_dir):
        sc = read_scenario_file(f)
        if sc.name in out:
            raise ScenarioError(f"{f.name}: scenario name {sc.name!r} already used by {out[sc.name].source}")
        out[sc.name] = sc
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "baseline", kv[0])))


# --------------------------------------------------------------------------- resolution
def _closest(name: str, candidates: Iterable[str]) -> str:
    close = suggest(name, candidates, n=1)
    return close[0] if close else ""


def _chain(name: str, scenarios: Mapping[str, Scenario]) -> list[Scenario]:
    """Scenarios from the root ancestor down to ``name``."""
    chain: list[Scenario] = []
    seen: list[str] = []
    cur: str | None = name
    child: Scenario | None = None
    while cur is not None:
        if cur in seen:
            cycle = " -> ".join(seen + [cur])
            raise ScenarioError(f"{scenarios[seen[0]].source}: key 'extends' makes a cycle: {cycle}")
        if cur not in scenarios:
            if child is None:
                close = _closest(cur, scenarios)
                hint = f" (did you mean '{close}'?)" if close else ""
                raise ScenarioError(f"unknown scenario {cur!r}{hint}; known: {', '.join(scenarios)}")
            close = _closest(cur, scenarios)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ScenarioError(f"{child.source}: key 'extends' names missing scenario {cur!r}{hint}")
        seen.append(cur)
        child = scenarios[cur]
        chain.append(child)
        cur = child.extends
    return chain[::-1]


def _check_name(var: str, where: str, facts: ModelFacts) -> str:
    """The constant's Vensim name (one resolver: any case, ``_`` for spaces)."""
    from .params import resolve_name

    spell = {n: n for n in facts.constants}
    if facts.params is not None:
        spell.update({p: n for p, n in facts.params.py_names.items() if n in facts.constants})
    try:
        return resolve_name(var, spell, what="model constant", where=f"{where}: ",
                            error=ScenarioError)
    except ScenarioError:
        real = {n.lower(): n for n in facts.variables}.get(var.lower())
        if real is None:
            raise
        raise ScenarioError(
            f"{where}: {real!r} is computed by an equation, not a constant; override one of the "
            "constants it depends on instead") from None


def _check_range(var: str, value: float, where: str, facts: ModelFacts) -> None:
    """The one parameter validator's value rules (range, durations >= TIME STEP)."""
    from .errors import ParameterValueError
    from .params import check_values

    fx = facts.params
    if fx is None or var not in fx.constants:
        lo, hi = facts.limits.get(var, (None, None))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ScenarioError(f"{where}: value {value:g} for {var!r} outside its range "
                                f"[{'?' if lo is None else f'{lo:g}'}, "
                                f"{'?' if hi is None else f'{hi:g}'}]")
        return
    try:
        check_values(fx.constants[var], value, fx.time_step, fx.time_unit)
    except ParameterValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _check_year(t: float, where: str, facts: ModelFacts) -> None:
    if not facts.initial_time <= t <= facts.final_time:
        raise ScenarioError(
            f"{where}: year {t:g} outside the run {facts.initial_time:g}-{facts.final_time:g}"
        )


@dataclass
class ResolvedScenario:
    """A scenario with its ``extends`` chain merged, ready to run.

    Attributes
    ----------
    name : str
    description : str
    chain : list of str
        Scenario names from the root ancestor to this one.
    params : dict of str to float
        Constant overrides.
    interventions : list of Intervention
        Time-varying overrides in the order they apply.
    """

    name: str
    description: str
    chain: list
    params: dict
    interventions: list

    def overrides(self, facts: ModelFacts) -> dict[str, float | pd.Series]:
        """Convert to the ``params`` argument of :func:`aicarousel.model.run`.

        Parameters
        ----------
        facts : ModelFacts
            Baseline constant values and the run window.

        Returns
        -------
        dict
            Float per overridden constant; :class:`pandas.Series` (index: year) per
            constant with interventions.
        """
        out: dict[str, float | pd.Series] = dict(self.params)
        by_var: dict[str, list[Intervention]] = {}
        for iv in self.interventions:
            by_var.setdefault(iv.variable, []).append(iv)
        t0, t1 = facts.initial_time, facts.final_time
        for var, ivs in by_var.items():
            base = float(self.params.get(var, facts.constants[var]))
            pts = [(t0, base), (t1, base)]
            for iv in ivs:
                pts = _apply(pts, iv, t0, t1)
            series = pd.Series([v for _, v in pts], index=pd.Index([t for t, _ in pts], name="time"),
                               name=var, dtype=float)
            out[var] = series
        return out


def _interp(pts: list[tuple[float, float]], t: float) -> float:
    if t <= pts[0][0]:
        return pts[0][1]
    for (ta, va), (tb, vb) in zip(pts, pts[1:]):
        if ta <= t <= tb:
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return pts[-1][1]


def _apply(pts: list[tuple[float, float]], iv: Intervention, t0: float, t1: float) -> list:
    """Override the piecewise-linear function ``pts`` from the intervention's date on."""
    if iv.type == "table":
        new = list(iv.points)
        if new[0][0] > t0:
            new.insert(0, (t0, new[0][1]))
        if new[-1][0] < t1:
            new.append((t1, new[-1][1]))
        return new
    begin = iv.at if iv.type == "step" else iv.start
    before = _interp(pts, begin - (STEP_EPSILON if iv.type == "step" else 0.0))
    target = iv.to if iv.to is not None else before * iv.scale
    kept = [(t, v) for t, v in pts if t < begin - STEP_EPSILON]
    if iv.type == "step":
        if begin - STEP_EPSILON >= t0:
            kept.append((begin - STEP_EPSILON, before))
        kept.append((max(begin, t0), target))
    else:
        kept.append((begin, before))
        kept.append((iv.end, target))
    if kept[-1][0] < t1:
        kept.append((t1, target))
    return kept


def resolve(name: str, scenarios: Mapping[str, Scenario] | None = None,
            facts: ModelFacts | None = None) -> ResolvedScenario:
    """Merge a scenario with its ancestors and validate it against the model.

    Parent values come first; a child's ``params`` entry replaces the parent's
    value and drops the parent's interventions on that constant; a child's
    interventions apply after the parent's. Interventions on one constant apply
    in order: each replaces the value from its own date on (a ``scale`` scales
    the value in force just before that date); a ``table`` replaces the whole
    series.

    Parameters
    ----------
    name : str
        Scenario name.
    scenarios : mapping, optional
        From :func:`load_scenarios`; default: all of ``scenarios/``.
    facts : ModelFacts, optional
        Default: :func:`model_facts` of the carousel model.

    Returns
    -------
    ResolvedScenario

    Raises
    ------
    ScenarioError
        Unknown scenario or constant (closest match given), missing parent,
        ``extends`` cycle, date outside the run, value outside a constant's range.
    """
    scenarios = load_scenarios() if scenarios is None else scenarios
    facts = model_facts() if facts is None else facts
    chain = _chain(name, scenarios)
    params: dict[str, float] = {}
    ivs: list[Intervention] = []
    for sc in chain:
        seen: dict[str, str] = {}
        for given, value in sc.params.items():
            where = f"{sc.source}: params[{short(repr(given), 60)}]"
            var = _check_name(given, where, facts)
            if var in seen:
                raise ScenarioError(f"{sc.source}: params {seen[var]!r} and {given!r} both name "
                                    f"{var!r}; give it once")
            seen[var] = given
            _check_range(var, value, where, facts)
            params[var] = value
            ivs = [iv for iv in ivs if iv.variable != var]
        for i, iv in enumerate(sc.interventions):
            where = f"{sc.source}: interventions[{i}]"
            iv = replace(iv, variable=_check_name(iv.variable, where + ".variable", facts))
            for key in ("at", "start", "end"):
                t = getattr(iv, key)
                if t is not None:
                    _check_year(t, f"{where}.{key}", facts)
            for j, (t, v) in enumerate(iv.points):
                _check_year(t, f"{where}.points[{j}]", facts)
                _check_range(iv.variable, v, f"{where}.points[{j}]", facts)
            if iv.to is not None:
                _check_range(iv.variable, iv.to, f"{where}.to", facts)
            ivs.append(iv)
    resolved = ResolvedScenario(name=name, description=chain[-1].description,
                                chain=[s.name for s in chain], params=params, interventions=ivs)
    # scaled values can leave the range only once the base is known
    for var, value in resolved.overrides(facts).items():
        if isinstance(value, pd.Series):
            for v in value.to_numpy():
                _check_range(var, float(v), f"{scenarios[name].source}: interventions on '{var}'", facts)
    return resolved


def validate_all(names: Iterable[str] | None = None, scenarios_dir: str | os.PathLike | None = None,
                 model_file: str | os.PathLike | None = None) -> dict[str, ResolvedScenario]:
    """Read, merge and validate scenarios before any run.

    Parameters
    ----------
    names : iterable of str, optional
        Scenarios to validate; default all files in ``scenarios_dir``.
    scenarios_dir : path, optional
        Default ``scenarios/``.
    model_file : path, optional
        Default ``models/ai_carousel.mdl``.

    Returns
    -------
    dict of str to ResolvedScenario
        In the order requested (baseline first when all).

    Raises
    ------
    ScenarioError
        The first problem found, naming the file and key.
    """
    scenarios = load_scenarios(scenarios_dir)
    if not scenarios:
        d = Path(scenarios_dir) if scenarios_dir is not None else paths.SCENARIOS_DIR
        raise ScenarioError(f"no scenario files (*.yaml) in {paths.relative_to_root(d)}")
    facts = model_facts(model_file)
    wanted = list(scenarios) if names is None else list(dict.fromkeys(names))
    return {n: resolve(n, scenarios, facts) for n in wanted}


def to_params(name: str, scenarios_dir: str | os.PathLike | None = None,
              model_file: str | os.PathLike | None = None) -> dict[str, float | pd.Series]:
    """Overrides of one scenario, as :func:`aicarousel.model.run` takes them.

    Parameters
    ----------
    name : str
        Scenario name (file stem in ``scenarios/``).
    scenarios_dir, model_file : path, optional
        Defaults: ``scenarios/`` and ``models/ai_carousel.mdl``.

    Returns
    -------
    dict of str to float or pandas.Series
    """
    facts = model_facts(model_file)
    return resolve(name, load_scenarios(scenarios_dir), facts).overrides(facts)
