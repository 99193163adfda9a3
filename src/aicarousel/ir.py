"""Intermediate representation (IR) of a system-dynamics model, built from PySD's parse.

One parse of the model file feeds every derivation of the project: the symbolic system
(:mod:`aicarousel.symbolic`), the vectorised ensemble engine, the loop graph
(:mod:`aicarousel.loops`) and documentation. The IR is built by walking PySD's
``AbstractModel`` (``VensimFile(...).parse(); get_abstract_model()`` for ``.mdl``,
``XmileFile`` for ``.xmile``); nothing re-types an equation.

Structure
---------
``build_ir(path) -> ModelIR`` with

* ``ir.time`` : :class:`TimeSpec` (initial, final, dt, saveper), in model time units.
* ``ir.variables`` : ``dict[str, Variable]`` keyed by PySD's Python name (``py_name``).
  ``Variable.kind`` is ``"stock"``, ``"aux"``, ``"constant"`` or ``"lookup"``.
  For a stock ``expr`` is its net flow (d/dt) and ``initial`` its initial value; for an aux
  ``expr`` is its equation (and ``initial`` holds the ACTIVE INITIAL value if any);
  lookups carry ``table = (x, y)``. Control variables (``initial_time``, ``final_time``,
  ``time_step``, ``saveper``) are ordinary constants/auxes and may be referenced.
* ``ir.stocks`` (stocks in model order, internal stocks included), ``ir.constants``
  (``py_name -> float``), ``ir.order`` (auxiliaries in evaluation order),
  ``ir.dependencies(name)``, ``ir.sha256`` (hash of the model file).

Expressions are trees of frozen dataclasses: :class:`Num`, :class:`Ref`, :class:`Time`,
:class:`Op` (``op`` in ``+ - * / ^ neg < > <= >= = <> and or not``; binary ops hold exactly
two args), :class:`Call` (``func`` in :data:`FUNCTIONS`) and :class:`Lookup`.

Stateful functions are expanded into internal stocks (``Variable.internal = True``) with
PySD's numerics (see ``pysd.py_backend.statefuls``):

* ``SMOOTH``/``SMOOTHI``/``SMOOTH3``/``SMOOTH3I`` of order n: stages ``s_1..s_n``,
  ``d s_k/dt = (target_k - s_k) * n / T`` with ``target_1 = input``, ``target_k = s_{k-1}``;
  every stage starts at the initial value; output ``s_n``.
* ``DELAY1``/``DELAY1I``/``DELAY3``/``DELAY3I``/``DELAY N`` (constant delay time): stages hold
  ``value * T`` (PySD's scaling); ``out_k = s_k / T``, ``d s_k/dt = (in_k - out_k) * n`` with
  ``in_1 = input``, ``in_k = out_{k-1}``; every stage starts at ``initial * T``; output
  ``s_n / T``. PySD lowers the order when ``n * dt > T``; the IR does not (it raises instead).
* ``TREND``: ``s(0) = input / (1 + initial_trend * T)``, ``ds/dt = (input - s) / T``,
  output ``ZIDZ(input - s, T * ABS(s))``.
* ``INITIAL(x)``: a stock with zero net flow whose initial value is ``x``.
* ``DELAY N`` with a varying delay time: as above, but (as PySD's ``DelayN``) stage k divides
  by the delay time of k steps ago, kept in discrete states ``<obj>_times_<k>``
  (``Variable.discrete``: the next value is ``expr``); the output divides by the delay time
  of the previous step.
* ``DELAY FIXED(input, T, init)``: a pipe of ``n = round(max(T / dt, 1) + 1e-6)`` discrete
  states (n fixed at the initial time, as in PySD), ``q_1 <- input``, ``q_k <- q_{k-1}``,
  every one starting at ``init``; output ``q_n``.
* Non-negative stocks (XMILE) keep their flow as ``expr``; ``Variable.non_negative`` makes
  the evaluators set them to ``max(value, 0)`` after each step (PySD's ``NonNegativeInteg``).

Macros (one output) are inlined at each call: the macro's variables become internal
variables ``_macro_<macro>_<caller>_<name>`` whose inputs are the call's arguments.

Constants that fix structure at build time (a DELAY FIXED time, a delay order) are listed
in ``ModelIR.structural``; overriding them in a run raises ``ParameterValueError``.

Internal stock names follow PySD's stateful objects: ``_smooth_<var>``, ``_delay_<var>``,
``_delayn_<var>``, ``_trend_<var>``, ``_initial_<var>`` with ``_<k>`` appended for stage k
(k = 1..n) when n > 1. ``ModelIR.internal_map`` maps each to ``(pysd_object_name, index)``.

Semantics follow PySD 3.14 exactly: Euler integration, ``STEP(h, t0) = h * (time + dt/2 >
t0)``, ``PULSE(start, width) = 1 if start - 1e-6 <= time < start + width``, ``RAMP`` with
``time + 1e-6 > start``, ``XIDZ``/``ZIDZ`` with ``|den| < 1e-6``, lookups piecewise linear with
flat extrapolation. Anything else (subscripts, data, external data, macros with several
outputs, random functions, SAMPLE IF TRUE, FORECAST, ...) raises
:class:`aicarousel.errors.UnsupportedFeatureError` naming the variable and the function.

:func:`simulate` is a simple reference evaluator in pure Python (one float per variable,
Euler, PySD's time grid); it is slow but transparent, and is what faster engines are checked
against. :func:`evaluate` gives auxiliaries and stock derivatives at one state.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from aicarousel.errors import ModelFileError, SimulationError, UnsupportedFeatureError

__all__ = [
    "Num", "Ref", "Time", "Op", "Call", "Lookup", "Expr", "TimeSpec", "Variable", "ModelIR",
    "build_ir", "simulate", "evaluate", "eval_expr", "Evaluator", "refs", "walk", "FUNCTIONS",
    "SMALL_VENSIM", "CONTROL_VARS",
]

#: What PySD (and Vensim) treat as zero in XIDZ, ZIDZ, RAMP, PULSE, QUANTUM.
SMALL_VENSIM = 1e-6

#: Python names of the control variables.
CONTROL_VARS = ("initial_time", "final_time", "time_step", "saveper")


# --------------------------------------------------------------------------------------------
# Expression nodes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    """A number literal."""

    value: float


@dataclass(frozen=True)
class Ref:
    """A reference to another variable by ``py_name``."""

    name: str


@dataclass(frozen=True)
class Time:
    """The simulation time (model time units)."""


@dataclass(frozen=True)
class Op:
    """An operator: binary (two args) or unary ``neg``/``not`` (one arg)."""

    op: str
    args: tuple


@dataclass(frozen=True)
class Call:
    """A built-in function call; ``func`` is one of :data:`FUNCTIONS`."""

    func: str
    args: tuple


@dataclass(frozen=True)
class Lookup:
    """Evaluation of the lookup table variable ``table_name`` at ``x``."""

    table_name: str
    x: object


Expr = Num | Ref | Time | Op | Call | Lookup

#: Built-in functions the IR knows, with their accepted argument counts.
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "min": (2,), "max": (2,), "abs": (1,), "exp": (1,), "ln": (1,), "log": (2,), "sqrt": (1,),
    "power": (2,), "integer": (1,), "if_then_else": (3,), "step": (2,), "ramp": (2, 3),
    "pulse": (2,), "pulse_train": (4,), "xidz": (3,), "zidz": (2,), "modulo": (2,),
    "quantum": (2,), "sin": (1,), "cos": (1,), "tan": (1,), "arcsin": (1,), "arccos": (1,),
    "arctan": (1,), "sinh": (1,), "cosh": (1,), "tanh": (1,), "pi": (0,),
}

_BINARY_OPS = {"+", "-", "*", "/", "^", "<", ">", "<=", ">=", "=", "<>", "and", "or"}
_AST_OPS = {":AND:": "and", ":OR:": "or", ":NOT:": "not", "negative": "neg"}


@dataclass(frozen=True)
class TimeSpec:
    """Simulation time settings (model time units, e.g. years)."""

    initial: float
    final: float
    dt: float
    saveper: float


@dataclass
class Variable:
    """One model variable.

    Attributes
    ----------
    name : str
        PySD's Python name (``py_name``).
    real_name : str
        Name as written in the model file (for internal stocks: a description).
    kind : str
        ``"stock"``, ``"aux"``, ``"constant"`` or ``"lookup"``.
    expr : Expr or None
        Aux equation; for a stock its net flow (d/dt); ``Num`` for a constant.
    initial : Expr or None
        Initial value of a stock; ACTIVE INITIAL value of an aux.
    table : tuple or None
        ``(x, y)`` of a lookup.
    units, limits, comment : str, tuple, str
        As in the model file.
    internal : bool
        True for stocks created by expanding SMOOTH/DELAY/TREND/INITIAL.
    non_negative : bool
        A non-negative stock (XMILE): after each Euler step it is set to ``max(value, 0)``,
        as PySD's ``NonNegativeInteg`` does; ``expr`` stays the plain net flow.
    discrete : bool
        A discrete internal state (kind ``"stock"``; DELAY FIXED's pipe, DELAY N's memory of
        past delay times): after each step its new value is ``expr`` evaluated at that step,
        not ``value + dt * expr``. No ODE describes it; the sympy system refuses it.
    """

    name: str
    real_name: str
    kind: str
    expr: object = None
    initial: object = None
    table: tuple | None = None
    units: str = ""
    limits: tuple = (None, None)
    comment: str = ""
    internal: bool = False
    array: tuple | None = None  # (array py_name, coords) for an element of a subscripted var
    non_negative: bool = False
    discrete: bool = False


@dataclass
class ModelIR:
    """The intermediate representation of one model file (see module docstring)."""

    path: Path
    sha256: str
    time: TimeSpec
    variables: dict[str, Variable]
    internal_map: dict[str, tuple[str, int]] = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)  # py_name -> subscripts.ArrayInfo
    #: constants (py_name) that fix the model's structure when it is built (the length of a
    #: DELAY FIXED pipe, a delay order), with what they fix; they cannot be overridden
    structural: dict[str, str] = field(default_factory=dict)
    _order: list[str] | None = field(default=None, repr=False)

    @property
    def stocks(self) -> list[str]:
        """Python names of all stocks (model order, internal stocks included)."""
        return [n for n, v in self.variables.items() if v.kind == "stock"]

    @property
    def constants(self) -> dict[str, float]:
        """``py_name -> value`` of every numeric constant (control variables included)."""
        return {n: float(v.expr.value) for n, v in self.variables.items()
                if v.kind == "constant"}

    @property
    def lookups(self) -> dict[str, Variable]:
        """Lookup table variables by ``py_name``."""
        return {n: v for n, v in self.variables.items() if v.kind == "lookup"}

    @property
    def auxiliaries(self) -> list[str]:
        """Python names of auxiliaries (model order)."""
        return [n for n, v in self.variables.items() if v.kind == "aux"]

    @property
    def order(self) -> list[str]:
        """Auxiliaries in evaluation (topological) order."""
        if self._order is None:
            self._order = _topological_order(self)
        return self._order

    def dependencies(self, name: str) -> set[str]:
        """Variables referenced by the equation (or net flow) of ``name``.

        Lookup tables called in the equation are included; the initial-value expression is
        not (see :meth:`initial_dependencies`).
        """
        v = self.variables[name]
        return refs(v.expr) if v.expr is not None else set()

    def initial_dependencies(self, name: str) -> set[str]:
        """Variables referenced by the initial value of stock ``name`` (or ACTIVE INITIAL)."""
        v = self.variables[name]
        return refs(v.initial) if v.initial is not None else set()

    def array_info(self, name: str):
        """The :class:`aicarousel.subscripts.ArrayInfo` of a subscripted variable (model
        name or py_name, case-insensitive), or None if ``name`` is not an array."""
        if name in self.arrays:
            return self.arrays[name]
        low = str(name).lower()
        return next((a for a in self.arrays.values() if a.real_name.lower() == low), None)

    def by_real_name(self) -> dict[str, str]:
        """Map model-file names (and py_names) to ``py_name``."""
        out = {v.real_name: n for n, v in self.variables.items()}
        out.update({n: n for n in self.variables})
        return out

    def resolve(self, name: str) -> str:
        """Return the ``py_name`` of ``name`` (Vensim name or py_name).

        Raises
        ------
        KeyError
            If the model has no such variable (message names it).
        """
        table = self.by_real_name()
        if name in table:
            return table[name]
        low = {k.lower(): v for k, v in table.items()}
        if name.lower() in low:
            return low[name.lower()]
        raise KeyError(f"model {self.path.name} has no variable {name!r}; use its name as "
                       "written in the model file")


# --------------------------------------------------------------------------------------------
# Expression helpers
# --------------------------------------------------------------------------------------------
def walk(expr) -> Iterable:
    """Yield every node of an expression tree (pre-order)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if e is None:
            continue
        yield e
        if isinstance(e, (Op, Call)):
            stack.extend(reversed(e.args))
        elif isinstance(e, Lookup):
            stack.append(e.x)


def refs(expr) -> set[str]:
    """Names referenced by ``expr`` (variables and lookup tables)."""
    out: set[str] = set()
    for e in walk(expr):
        if isinstance(e, Ref):
            out.add(e.name)
        elif isinstance(e, Lookup):
            out.add(e.table_name)
    return out


def _power(base, exponent):
    """``base ^ exponent`` with Vensim's precedence for a negative literal base.

    PySD's parser folds ``-2`` into the literal -2, then writes ``-2**2``, which Python (like
    Vensim) reads as -(2**2) = -4: unary minus binds looser than ``^``. So a negative number
    as the base is the negation of the power of its absolute value. (``POWER(-2, 2)`` is a
    function call and stays 4.)
    """
    if isinstance(base, Num) and math.copysign(1.0, base.value) < 0:
        return Op("neg", (Op("^", (Num(-base.value), exponent)),))
    return Op("^", (base, exponent))


def _fold(op: str, args: list):
    """Fold an n-ary chain of equal-precedence operators like Python does."""
    if op == "^":  # Python's ** (used by PySD) is right-associative
        acc = args[-1]
        for a in reversed(args[:-1]):
            acc = _power(a, acc)
        return acc
    raise AssertionError(op)


# --------------------------------------------------------------------------------------------
# Building the IR from PySD's abstract model
# --------------------------------------------------------------------------------------------
def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse(path: Path):
    """Parse a model file with PySD's translators and return the AbstractModel."""
    from .guard import harden_pysd_parser
    harden_pysd_parser()  # PySD's parser eval()s lookup ranges: literals only
    suffix = path.suffix.lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if suffix == ".mdl":
                from pysd.translators.vensim.vensim_file import VensimFile
                f = VensimFile(path)
            elif suffix in (".xmile", ".xml", ".stmx"):
                from pysd.translators.xmile.xmile_file import XmileFile
                f = XmileFile(path)
            else:
                raise ModelFileError(f"model file {path.name}: unknown extension {suffix!r}; "
                                     "give a Vensim .mdl or an XMILE .xmile file")
            f.parse()
            return f.get_abstract_model()
        except ModelFileError:
            raise
        except Exception as exc:  # PySD raises many kinds of errors on bad files
            if hasattr(exc, "pos") and hasattr(exc, "text"):  # a parse error: name the real line
                from .model import _locate_parse_error
                msg = _locate_parse_error(exc, path, path.read_text(encoding="utf-8",
                                                                    errors="replace"))
                raise ModelFileError(msg.replace(": cannot parse the model:",
                                                 ": cannot be parsed by PySD:", 1)) from None
            raise ModelFileError(f"model file {path.name} cannot be parsed by PySD: "
                                 f"{str(exc).split(' Parse tree:')[0]}; "
                                 "check its syntax in Vensim/Stella") from exc


class _Builder:
    """Walks PySD's AbstractModel and builds a :class:`ModelIR`."""

    def __init__(self, path: Path, am) -> None:
        from pysd.builders.python.namespace import NamespaceManager

        self.path = path
        self.section = next(s for s in am.sections if s.name == "__main__")
        #: macros by PySD's name, inlined at each call (see _inline_macro)
        self.macros = {s.name: s for s in am.sections if s.name != "__main__"}
        for m in self.macros.values():
            if m.returns:
                raise UnsupportedFeatureError(
                    f"model {path.name}: macro {m.name!r} has several outputs; the IR inlines "
                    "macros with one output only: split it into one macro per output")
        self._scope: dict[str, object] = {}  # macro-local names -> expressions while inlining
        self.ns = NamespaceManager(self.section.params)
        for el in self.section.elements:
            self.ns.add_to_namespace(el.name)
        self.variables: dict[str, Variable] = {}
        self.internal_map: dict[str, tuple[str, int]] = {}
        self.lookup_names: set[str] = set()
        self.const_values: dict[str, float] = {}
        self._current: str = ""
        self._current_real: str = ""
        self._used: set[str] = set()
        self.structural_exprs: list[tuple[object, str]] = []

    # -- helpers -------------------------------------------------------------------------
    def unsupported(self, what: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(
            f"variable {self._current_real!r} in {self.path.name} uses {what}, which the "
            "model IR (symbolic analysis, ensemble engine) does not support; rewrite it with "
            "supported functions (see aicarousel.ir) or use the plain PySD run")

    def new_internal_name(self, prefix: str) -> str:
        base = self.ns.make_python_identifier(self._current, prefix=prefix)
        name, i = base, 1
        while name in self._used or name in self.variables:
            name = f"{base}_{i}"
            i += 1
        self._used.add(name)
        return name

    def py(self, reference: str) -> str:
        try:
            return self.ns.cleanspace[reference]
        except KeyError:
            raise ModelFileError(
                f"variable {self._current_real!r} in {self.path.name} refers to "
                f"{reference!r}, which the model does not define") from None

    def static_value(self, expr) -> float:
        """Value of an expression made of numbers and constants only (for orders)."""
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Ref) and expr.name in self.const_values:
            return self.const_values[expr.name]
        # PySD fixes the order once, at initialisation: evaluate it at INITIAL TIME from
        # the equations it uses (constants, Time and auxiliaries of those only)
        try:
            return self._initial_value(expr)
        except (UnsupportedFeatureError, ModelFileError, KeyError, RecursionError):
            raise self.unsupported("a delay/smooth order that depends on stocks") from None

    def _initial_value(self, expr) -> float:
        """Value of an expression at INITIAL TIME, resolving auxiliaries from the parse."""
        elements = {self.ns.namespace[el.name]: el for el in self.section.elements}
        scratch = _Builder.__new__(_Builder)
        scratch.__dict__.update(self.__dict__)
        import copy

        scratch.ns = copy.deepcopy(self.ns)  # never let the scratch pass rename anything
        scratch.variables = {}
        scratch.internal_map = {}
        scratch._used = set(self._used)
        cache: dict[str, float] = {}

        def value(name: str, seen=frozenset()) -> float:
            if name in cache:
                return cache[name]
            if name in seen:
                raise ModelFileError(f"{name} depends on itself")
            ast = elements[name].components[0].ast
            e = scratch.expr(ast)
            if scratch.variables:  # it uses a stock or stateful function
                raise UnsupportedFeatureError(name)
            cache[name] = ev(e, seen | {name})
            return cache[name]

        def ev(e, seen=frozenset()) -> float:
            env = {r: value(r, seen) for r in refs(e)}
            return float(eval_expr(e, env, None, t=t0, dt=dt0))

        t0 = dt0 = float("nan")
        t0 = value("initial_time") if "initial_time" in elements else 0.0
        dt0 = value("time_step") if "time_step" in elements else 1.0
        return ev(expr)

    # -- main ----------------------------------------------------------------------------
    def build(self) -> ModelIR:
        from pysd.translators.structures import abstract_model as am_mod

        lookups = []
        for el in self.section.elements:
            self._current_real = el.name
            if len(el.components) != 1:
                raise self.unsupported("subscripts (several equations for one variable)")
            c = el.components[0]
            if c.subscripts and (c.subscripts[0] or c.subscripts[1]):
                raise self.unsupported("subscripts/arrays")
            if isinstance(c, am_mod.AbstractData):
                raise self.unsupported("data variables")
            if isinstance(c, am_mod.AbstractLookup):
                lookups.append(el.name)
        # subscript ranges appear as SubscriptRange entries of the section
        if getattr(self.section, "subscripts", None):
            rng = self.section.subscripts[0]
            self._current_real = getattr(rng, "name", "?")
            raise self.unsupported("subscript ranges")
        self.lookup_names = {self.ns.namespace[n] for n in lookups}
        for el in self.section.elements:
            py = self.ns.namespace[el.name]
            c = el.components[0]
            if not isinstance(c.ast, (int, float, np.number)):
                continue
            self.const_values[py] = float(c.ast)

        for el in self.section.elements:
            self._add_element(el)

        time = self._time_spec()
        ir = ModelIR(path=self.path, sha256=_file_sha256(self.path), time=time,
                     variables=self.variables, internal_map=self.internal_map)
        self._mark_structural(ir)
        # validate references
        for n, v in ir.variables.items():
            for r in refs(v.expr) | refs(v.initial):
                if r not in ir.variables:
                    raise ModelFileError(
                        f"variable {v.real_name!r} in {self.path.name} refers to {r!r}, which "
                        "has no equation in the model")
        ir.order  # noqa: B018 -- detect algebraic loops now, with a clear message
        return ir

    def _mark_structural(self, ir: ModelIR) -> None:
        """Record in ``ir.structural`` the constants that fix the model's structure."""
        for e, what in self.structural_exprs:
            seen, todo = set(), list(refs(e))
            while todo:
                n = todo.pop()
                if n in seen or n not in self.variables:
                    continue
                seen.add(n)
                v = self.variables[n]
                if v.kind == "constant" and n not in CONTROL_VARS:
                    ir.structural.setdefault(n, what)
                elif v.kind == "aux":
                    todo.extend(refs(v.expr) | refs(v.initial))

    def _time_spec(self) -> TimeSpec:
        vals = {}
        for cv in CONTROL_VARS:
            if cv in self.variables:
                vals[cv] = _static_eval(self.variables, cv)
        missing = [cv for cv in ("initial_time", "final_time", "time_step") if cv not in vals]
        if missing:
            raise ModelFileError(f"model {self.path.name} lacks control variable(s) "
                                 f"{', '.join(missing)}; add INITIAL TIME, FINAL TIME and "
                                 "TIME STEP")
        return TimeSpec(vals["initial_time"], vals["final_time"], vals["time_step"],
                        vals.get("saveper", vals["time_step"]))

    def _add_element(self, el, py: str | None = None, real: str | None = None) -> None:
        from pysd.translators.structures import abstract_expressions as ae

        py = py or self.ns.namespace[el.name]
        real = real or el.name
        self._current, self._current_real = py, real
        c = el.components[0]
        ast = c.ast
        if len(el.components) != 1 or (c.subscripts and (c.subscripts[0] or c.subscripts[1])):
            raise self.unsupported("subscripts/arrays")
        common = dict(name=py, real_name=real, units=el.units or "",
                      limits=tuple(el.limits) if el.limits else (None, None),
                      comment=(el.documentation or "").strip())
        if isinstance(ast, ae.LookupsStructure):
            self.variables[py] = Variable(kind="lookup", table=self._table(ast), **common)
            return
        if isinstance(ast, (int, float, np.number)) and not isinstance(ast, bool):
            self.variables[py] = Variable(kind="constant", expr=Num(float(ast)), **common)
            return
        if isinstance(ast, ae.IntegStructure):
            self.variables[py] = Variable(kind="stock", expr=None,
                                          non_negative=bool(ast.non_negative), **common)
            flow = self.expr(ast.flow)
            init = self.expr(ast.initial)
            self.variables[py].expr = flow
            self.variables[py].initial = init
            return
        if isinstance(ast, ae.CallStructure) and ast.function.reference == "active_initial":
            var = Variable(kind="aux", **common)
            self.variables[py] = var
            var.expr = self.expr(ast.arguments[0])
            var.initial = self.expr(ast.arguments[1])
            return
        var = Variable(kind="aux", **common)
        self.variables[py] = var
        var.expr = self.expr(ast)

    def _table(self, ast) -> tuple:
        if ast.type not in ("interpolate",):
            raise self.unsupported(f"a lookup with {ast.type!r} interpolation")
        x = tuple(float(v) for v in ast.x)
        y = tuple(float(v) for v in ast.y)
        if any(b < a for a, b in zip(x, x[1:])):
            raise ModelFileError(f"lookup {self._current_real!r} in {self.path.name} has "
                                 "x values that are not increasing; sort them")
        return (x, y)

    def _add_internal_stock(self, name: str, real: str, flow, initial, obj: str,
                            idx: int, discrete: bool = False) -> None:
        self.variables[name] = Variable(name=name, real_name=real, kind="stock", expr=flow,
                                        initial=initial, internal=True, discrete=discrete,
                                        comment=f"internal stock of {self._current_real}")
        self.internal_map[name] = (obj, idx)

    # -- expressions ---------------------------------------------------------------------
    def expr(self, ast):
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, bool):
            return Num(float(ast))
        if isinstance(ast, (int, float, np.number)):
            return Num(float(ast))
        if isinstance(ast, ae.ReferenceStructure):
            if ast.subscripts is not None:
                raise self.unsupported("subscripted references")
            if ast.reference == "time":
                return Time()
            if ast.reference in self._scope:
                return self._scope[ast.reference]
            name = self.py(ast.reference)
            if name in self.lookup_names:
                raise self.unsupported(f"the lookup {ast.reference!r} without an argument")
            return Ref(name)
        if isinstance(ast, (ae.ArithmeticStructure, ae.LogicStructure)):
            return self._operation(ast)
        if isinstance(ast, ae.CallStructure):
            return self._call(ast)
        if isinstance(ast, ae.InlineLookupsStructure):
            name = self.new_internal_name("_hardcodedlookup")
            self.variables[name] = Variable(name=name, real_name=f"{self._current_real} "
                                            "(WITH LOOKUP table)", kind="lookup",
                                            table=self._table(ast.lookups), internal=True)
            self.lookup_names.add(name)
            return Lookup(name, self.expr(ast.argument))
        if isinstance(ast, (ae.SmoothStructure, ae.SmoothNStructure)):
            return self._smooth(ast)
        if isinstance(ast, (ae.DelayStructure, ae.DelayNStructure)):
            return self._delay(ast, "delayn" if isinstance(ast, ae.DelayNStructure)
                               else "delay")
        if isinstance(ast, ae.TrendStructure):
            return self._trend(ast)
        if isinstance(ast, ae.InitialStructure):
            name = self.new_internal_name("_initial")
            self._add_internal_stock(name, f"INITIAL in {self._current_real}", Num(0.0),
                                     self.expr(ast.initial), name, 0)
            return Ref(name)
        if type(ast).__name__ == "DelayFixedStructure":
            return self._delay_fixed(ast)
        names = {
            "ForecastStructure": "FORECAST", "SampleIfTrueStructure": "SAMPLE IF TRUE",
            "DataStructure": "data", "GetDataStructure": "GET DATA",
            "GetLookupsStructure": "GET LOOKUPS", "GetConstantsStructure": "GET CONSTANTS",
            "GameStructure": "GAME", "AllocateAvailableStructure": "ALLOCATE AVAILABLE",
            "AllocateByPriorityStructure": "ALLOCATE BY PRIORITY",
            "SubscriptsReferenceStructure": "subscripts", "LookupsStructure": "a lookup table",
            "IntegStructure": "INTEG inside an expression",
        }
        raise self.unsupported(names.get(type(ast).__name__, type(ast).__name__))

    def _operation(self, ast):
        ops = [_AST_OPS.get(o, o) for o in ast.operators]
        args = [self.expr(a) for a in ast.arguments]
        if len(args) == 1:
            if len(ops) != 1 or ops[0] not in ("neg", "not"):
                raise self.unsupported(f"the operator {ast.operators}")
            return Op(ops[0], (args[0],))
        for o in ops:
            if o not in _BINARY_OPS:
                raise self.unsupported(f"the operator {o!r}")
        if all(o == "^" for o in ops):
            return _fold("^", args)
        acc = args[0]  # same-precedence chain, evaluated left to right as in Python
        for o, a in zip(ops, args[1:]):
            acc = Op(o, (acc, a))
        return acc

    def _call(self, ast):
        fname = ast.function.reference
        if fname in self.ns.cleanspace and self.ns.cleanspace[fname] in self.lookup_names:
            if len(ast.arguments) != 1:
                raise self.unsupported(f"the lookup {fname!r} with {len(ast.arguments)} "
                                       "arguments")
            return Lookup(self.ns.cleanspace[fname], self.expr(ast.arguments[0]))
        if fname in self.macros:
            return self._inline_macro(fname, ast.arguments)
        if fname == "active_initial":
            raise self.unsupported("ACTIVE INITIAL inside an expression")
        if fname == "Xramp":
            fname = "ramp"
        if fname not in FUNCTIONS:
            raise self.unsupported(f"the function {fname.upper().replace('_', ' ')}")
        args = tuple(self.expr(a) for a in ast.arguments)
        if len(args) not in FUNCTIONS[fname]:
            raise self.unsupported(f"{fname.upper()} with {len(args)} arguments")
        if fname == "pi":
            return Num(math.pi)
        if fname == "power":
            return Op("^", args)
        return Call(fname, args)

    def _inline_macro(self, fname: str, arguments) -> Ref:
        """Expand one call of a macro: each of its variables becomes an internal variable
        ``_macro_<macro>_<caller>..._<name>`` (stocks stay stocks), its inputs are the call's
        argument expressions, and the call is the macro's own-name variable. PySD runs a macro
        as a sub-model on the same time grid; inlined, the numbers are the same."""
        from pysd.builders.python.namespace import NamespaceManager

        sec = self.macros[fname]
        args = [self.expr(a) for a in arguments]  # in the caller's scope
        if len(args) != len(sec.params):
            raise self.unsupported(f"the macro {fname!r} with {len(args)} arguments "
                                   f"(it takes {len(sec.params)})")
        ns = NamespaceManager(sec.params)
        for el in sec.elements:
            ns.add_to_namespace(el.name)
        prefix = self.new_internal_name(f"_macro_{fname}")
        scope: dict[str, object] = {}
        params = {ns.namespace.get(p, p): a for p, a in zip(sec.params, args)}
        own = {ns.namespace[el.name]: f"{prefix}_{ns.namespace[el.name]}" for el in sec.elements}
        for ref, py in ns.cleanspace.items():
            if py in params:
                scope[ref] = params[py]
            elif py in own:
                scope[ref] = Ref(own[py])
        for p, a in zip(sec.params, args):
            scope.setdefault(p, a)
        out = next((own[ns.namespace[el.name]] for el in sec.elements
                    if ns.namespace[el.name] == fname or el.name.lower().replace(" ", "_")
                    == fname), None)
        if out is None:
            raise self.unsupported(f"the macro {fname!r} without an output of its own name")
        saved = (self._scope, self._current, self._current_real)
        caller = self._current_real
        try:
            for el in sec.elements:
                self._scope = scope
                self._add_element(el, py=own[ns.namespace[el.name]],
                                  real=f"{el.name} (macro {fname} in {caller})")
                self.variables[own[ns.namespace[el.name]]].internal = True
        finally:
            self._scope, self._current, self._current_real = saved
        return Ref(out)

    def _smooth(self, ast):
        order = int(self.static_value(self.expr(ast.order)) if not isinstance(
            ast.order, (int, float)) else ast.order)
        inp = self.expr(ast.input)
        T = self.expr(ast.smooth_time)
        init = self.expr(ast.initial)
        obj = self.new_internal_name("_smooth")
        names = [obj] if order == 1 else [f"{obj}_{k}" for k in range(1, order + 1)]
        for k, name in enumerate(names):
            target = inp if k == 0 else Ref(names[k - 1])
            flow = Op("/", (Op("*", (Op("-", (target, Ref(name))), Num(float(order)))), T))
            self._add_internal_stock(name, f"SMOOTH stage {k + 1}/{order} of "
                                     f"{self._current_real}", flow, init, obj, k)
        return Ref(names[-1])

    def _delay(self, ast, kind: str):
        order_expr = self.expr(ast.order) if not isinstance(ast.order, (int, float)) \
            else Num(float(ast.order))
        order = self.static_value(order_expr)
        if order != int(order) or order < 1:
            raise self.unsupported(f"a delay order of {order} (must be a positive integer)")
        order = int(order)
        inp = self.expr(ast.input)
        T = self.expr(ast.delay_time)
        varying = kind == "delayn" and (refs(T) - set(self.const_values)
                                        or any(isinstance(e, Time) for e in walk(T)))
        init = self.expr(ast.initial)
        self.structural_exprs.append((order_expr, f"the order of the delay in "
                                                  f"{self._current_real!r}"))
        try:  # PySD silently lowers the order when order * TIME STEP > delay time
            t_val, dt_val = self.static_value(T), self._initial_value(Ref("time_step"))
        except UnsupportedFeatureError:
            t_val = dt_val = None
        if t_val is not None and order * dt_val > t_val:
            raise self.unsupported(f"a delay of order {order} with delay time {t_val} shorter "
                                   f"than order * TIME STEP ({order * dt_val}), where PySD "
                                   "lowers the order; shorten TIME STEP")
        obj = self.new_internal_name(f"_{kind}")
        names = [obj] if order == 1 else [f"{obj}_{k}" for k in range(1, order + 1)]
        # stage k's outflow divides by its delay time: T for DELAY1/3 and a constant DELAY N;
        # for DELAY N with a varying T, PySD's DelayN keeps the delay time of each stage as
        # it was k steps ago (a discrete memory ``tau_k``; its output divides by tau_0, the
        # delay time of the previous step)
        times = [T] * order
        out_T = T
        if varying:
            taus = [f"{obj}_times_{k}" for k in range(1, order + 1)]
            for k, tau in enumerate(taus):
                self._add_internal_stock(
                    tau, f"DELAY N delay time {k} steps back in {self._current_real}",
                    T if k == 0 else Ref(taus[k - 1]), T, obj + ".times", k, discrete=True)
            times = [T] + [Ref(tau) for tau in taus[:-1]]
            out_T = Ref(taus[0])
        for k, name in enumerate(names):
            inflow = inp if k == 0 else Op("/", (Ref(names[k - 1]), times[k - 1]))
            flow = Op("*", (Op("-", (inflow, Op("/", (Ref(name), times[k])))),
                            Num(float(order))))
            self._add_internal_stock(name, f"DELAY stage {k + 1}/{order} of "
                                     f"{self._current_real}", flow, Op("*", (init, T)), obj, k)
        return Op("/", (Ref(names[-1]), out_T))

    def _delay_fixed(self, ast):
        """DELAY FIXED as PySD's DelayFixed: a pipe of n = round(max(T / dt, 1)) values fixed
        at initialisation; each step the input enters and the value n steps old leaves."""
        inp = self.expr(ast.input)
        T = self.expr(ast.delay_time)
        init = self.expr(ast.initial)
        try:
            t_val, dt_val = self.static_value(T), self._initial_value(Ref("time_step"))
        except UnsupportedFeatureError:
            raise self.unsupported("DELAY FIXED with a delay time that depends on stocks at "
                                   "the initial time") from None
        n = round(max(t_val / dt_val, 1) + SMALL_VENSIM)
        if n > 100_000:
            raise self.unsupported(f"DELAY FIXED with {n} steps of delay")
        self.structural_exprs.append((T, f"the length of the DELAY FIXED pipe in "
                                         f"{self._current_real!r}"))
        obj = self.new_internal_name("_delayfixed")
        names = [f"{obj}_{k}" for k in range(1, n + 1)]
        for k, name in enumerate(names):
            self._add_internal_stock(name, f"DELAY FIXED value {k + 1}/{n} of "
                                     f"{self._current_real}",
                                     inp if k == 0 else Ref(names[k - 1]), init, obj, k,
                                     discrete=True)
        return Ref(names[-1])

    def _trend(self, ast):
        inp = self.expr(ast.input)
        T = self.expr(ast.average_time)
        init = self.expr(ast.initial_trend)
        name = self.new_internal_name("_trend")
        self._add_internal_stock(
            name, f"TREND average of {self._current_real}",
            Op("/", (Op("-", (inp, Ref(name))), T)),
            Op("/", (inp, Op("+", (Num(1.0), Op("*", (init, T)))))), name, 0)
        return Call("zidz", (Op("-", (inp, Ref(name))),
                             Op("*", (T, Call("abs", (Ref(name),))))))


def _static_eval(variables: Mapping[str, Variable], name: str, _seen=None) -> float:
    """Evaluate a variable made of constants only (control variables)."""
    _seen = _seen or set()
    if name in _seen:
        raise ModelFileError(f"control variable {name!r} depends on itself")
    v = variables[name]
    if v.kind == "constant":
        return float(v.expr.value)
    if v.kind != "aux":
        raise ModelFileError(f"control variable {v.real_name!r} must be a constant expression")
    if any(isinstance(e, Time) for e in walk(v.expr)):
        raise UnsupportedFeatureError(
            f"control variable {v.real_name!r} depends on Time; the model IR supports only "
            "constant control variables (INITIAL TIME, FINAL TIME, TIME STEP, SAVEPER): its "
            "engines integrate on a time grid fixed before the run. aicarousel.model.run "
            "(`aicarousel run --model FILE`) runs it in PySD")
    env = {r: _static_eval(variables, r, _seen | {name}) for r in refs(v.expr)}
    return float(eval_expr(v.expr, env, None, t=float("nan"), dt=float("nan")))


def _topological_order(ir: ModelIR) -> list[str]:
    """Auxiliaries sorted so that each comes after the auxiliaries it uses."""
    aux = [n for n, v in ir.variables.items() if v.kind == "aux"]
    auxset = set(aux)
    deps = {n: ir.dependencies(n) & auxset for n in aux}
    order: list[str] = []
    state: dict[str, int] = {}
    for root in aux:
        if root in state:
            continue
        stack = [(root, iter(sorted(deps[root])))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[node] = 2
                order.append(node)
            elif state.get(nxt) == 1:
                cyc = [n for n, _ in stack]
                cyc = cyc[cyc.index(nxt):] + [nxt]
                names = " -> ".join(ir.variables[n].real_name for n in cyc)
                raise ModelFileError(f"model {ir.path.name} has an algebraic loop (a cycle "
                                     f"without a stock): {names}; put a stock or a delay in it")
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(deps[nxt]))))
    return order


def build_ir(path) -> ModelIR:
    """Parse a Vensim (.mdl) or XMILE (.xmile) model into a :class:`ModelIR`.

    Parameters
    ----------
    path : str or os.PathLike
        Model file.

    Returns
    -------
    ModelIR

    Raises
    ------
    aicarousel.errors.ModelFileError
        If the file is missing or cannot be parsed, or has an algebraic loop.
    aicarousel.errors.UnsupportedFeatureError
        If the model uses a feature the IR does not support (message names the variable
        and the function).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; give the path of a .mdl or "
                             ".xmile file")
    from .model import read_model_text
    read_model_text(path)  # empty, binary, non-UTF-8, huge or truncated XMILE: one clear line
    am = _parse(path)
    if any(getattr(s, "subscripts", None) for s in am.sections):
        from aicarousel.subscripts import build_subscripted
        return build_subscripted(path, am)
    return _Builder(path, am).build()


# --------------------------------------------------------------------------------------------
# Reference evaluator
# --------------------------------------------------------------------------------------------
def _interp(table: tuple, x: float) -> float:
    xs, ys = table
    return float(np.interp(x, xs, ys))


def eval_expr(expr, env: Mapping[str, float], ir: ModelIR | None, t: float, dt: float,
              resolve: Callable[[str], float] | None = None) -> float:
    """Evaluate one expression with PySD's semantics.

    Parameters
    ----------
    expr : Expr
        Expression tree.
    env : mapping
        Values of referenced variables (``py_name -> float``).
    ir : ModelIR or None
        Needed for lookups.
    t, dt : float
        Current time and time step (model time units).
    resolve : callable, optional
        Called for names missing from ``env`` (lazy evaluation during initialisation).

    Returns
    -------
    float
    """
    def ev(e):
        if isinstance(e, Num):
            return e.value
        if isinstance(e, Ref):
            try:
                return env[e.name]
            except KeyError:
                if resolve is None:
                    raise
                return resolve(e.name)
        if isinstance(e, Time):
            return t
        if isinstance(e, Op):
            o = e.op
            if o == "neg":
                return -ev(e.args[0])
            if o == "not":
                return float(not ev(e.args[0]))
            a = ev(e.args[0])
            b = ev(e.args[1])
            if o == "+":
                return a + b
            if o == "-":
                return a - b
            if o == "*":
                return a * b
            if o == "/":
                return np.float64(a) / b
            if o == "^":
                return np.float64(a) ** b
            if o == "<":
                return float(a < b)
            if o == ">":
                return float(a > b)
            if o == "<=":
                return float(a <= b)
            if o == ">=":
                return float(a >= b)
            if o == "=":
                return float(a == b)
            if o == "<>":
                return float(a != b)
            if o == "and":
                return float(bool(a) and bool(b))
            if o == "or":
                return float(bool(a) or bool(b))
            raise AssertionError(o)
        if isinstance(e, Lookup):
            return _interp(ir.variables[e.table_name].table, ev(e.x))
        if isinstance(e, Call):
            f = e.func
            if f == "if_then_else":
                return ev(e.args[1]) if ev(e.args[0]) else ev(e.args[2])
            a = [ev(x) for x in e.args]
            if f == "min":
                return float(np.minimum(a[0], a[1]))
            if f == "max":
                return float(np.maximum(a[0], a[1]))
            if f == "abs":
                return abs(a[0])
            if f == "exp":
                return float(np.exp(a[0]))
            if f == "ln":
                return float(np.log(a[0]))
            if f == "log":
                return float(np.log(a[0]) / np.log(a[1]))
            if f == "sqrt":
                return float(np.sqrt(a[0]))
            if f == "integer":
                return float(int(a[0]))
            if f == "step":
                return a[0] * float(t + dt / 2 > a[1])
            if f == "ramp":
                final = t if len(a) == 2 else min(a[2], t)
                return float(t + SMALL_VENSIM > a[1]) * a[0] * (final - a[1])
            if f == "pulse":
                return 1.0 if a[0] - SMALL_VENSIM <= t < a[0] + a[1] else 0.0
            if f == "pulse_train":
                start, rep, width, end = a
                if rep == 0:
                    return 1.0 if start - SMALL_VENSIM <= t < start + width else 0.0
                if start <= t < end:
                    return 1.0 if (t - start + SMALL_VENSIM) % rep < width else 0.0
                return 0.0
            if f == "xidz":
                return a[2] if abs(a[1]) < SMALL_VENSIM else np.float64(a[0]) / a[1]
            if f == "zidz":
                return 0.0 if abs(a[1]) < SMALL_VENSIM else np.float64(a[0]) / a[1]
            if f == "quantum":
                return a[0] if a[1] < SMALL_VENSIM else a[1] * int(a[0] / a[1])
            if f == "modulo":
                q = a[0] if a[1] < SMALL_VENSIM else a[1] * int(a[0] / a[1])
                return a[0] - q
            fn = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
                  "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh,
                  "cosh": np.cosh, "tanh": np.tanh}[f]
            return float(fn(a[0]))
        raise TypeError(f"not an IR expression: {e!r}")

    return ev(expr)


def _apply_params(ir: ModelIR, params: Mapping | None) -> tuple[dict, dict]:
    """Split overrides into constant values and time functions, keyed by py_name."""
    consts: dict[str, float] = {}
    funcs: dict[str, Callable[[float], float]] = {}
    items = []
    for key, val in (params or {}).items():
        info = ir.array_info(key) if ir.arrays else None
        if info is None:
            items.append((key, val))
        else:  # a subscripted variable: one override per element
            from aicarousel.subscripts import element_values
            items.extend(element_values(info, val, per_run=False).items())
    for key, val in items:
        try:
            name = ir.resolve(key)
        except KeyError as exc:
            from aicarousel.errors import UnknownParameterError
            raise UnknownParameterError(str(exc.args[0])) from None
        if ir.variables[name].kind in ("stock", "lookup"):
            from aicarousel.errors import ParameterValueError
            raise ParameterValueError(f"{key!r} is a {ir.variables[name].kind}; only constants "
                                      "and auxiliaries can be overridden")
        if name in getattr(ir, "structural", {}):
            from aicarousel.errors import ParameterValueError
            raise ParameterValueError(
                f"{key!r} fixes {ir.structural[name]} when the model is built, so it cannot "
                "be overridden in a run; change it in the model file")
        if callable(val):
            funcs[name] = val
        elif hasattr(val, "index") and hasattr(val, "values"):  # pandas Series over time
            xs = np.asarray(val.index, dtype=float)
            ys = np.asarray(val.values, dtype=float)
            funcs[name] = lambda tt, xs=xs, ys=ys: float(np.interp(tt, xs, ys))
        else:
            consts[name] = float(val)
    return consts, funcs


class Evaluator:
    """The reference evaluator: one model's equations evaluated at a state, in pure Python.

    Holds the constants (with ``params`` applied), the time settings and the evaluation order
    of a :class:`ModelIR`; :func:`simulate`, :func:`evaluate`, the loop and dominance analyses,
    stability and the model-structure analysis all evaluate the model through it, so there is
    one evaluator of the IR (the vectorised engine in :mod:`aicarousel.ensemble` is proved
    equal to it by the differential tests).

    Parameters
    ----------
    ir : ModelIR
    params : mapping or None
        Constant overrides (model names or py_names, model units), or time-series lookups.

    Attributes
    ----------
    base : dict
        Value of every constant and control variable (py_name -> value, model units).
    time : TimeSpec
        Run window (model time units) after the overrides.
    order : list of str
        Auxiliaries and flows in evaluation order (py_names).
    stocks : list of str
        Stock py_names.
    """

    def __init__(self, ir: ModelIR, params: Mapping | None) -> None:
        self.ir = ir
        self.consts, self.funcs = _apply_params(ir, params)
        self.base = {n: float(v.expr.value) for n, v in ir.variables.items()
                     if v.kind == "constant"}
        self.base.update(self.consts)
        cv = {}
        for n in CONTROL_VARS:
            if n in self.consts:
                cv[n] = self.consts[n]
        ts = ir.time
        self.time = TimeSpec(cv.get("initial_time", ts.initial), cv.get("final_time", ts.final),
                             cv.get("time_step", ts.dt), cv.get("saveper", ts.saveper))
        self.base.update({"initial_time": self.time.initial, "final_time": self.time.final,
                          "time_step": self.time.dt, "saveper": self.time.saveper})
        self.order = [n for n in ir.order if n not in self.consts and n not in CONTROL_VARS]
        self.stocks = ir.stocks
        self.non_negative = [s for s in self.stocks
                             if getattr(ir.variables[s], "non_negative", False)]
        self.discrete = [s for s in self.stocks if getattr(ir.variables[s], "discrete", False)]

    def env_at(self, t: float, state: Mapping[str, float]) -> dict[str, float]:
        """Values of all variables (py_name -> value, model units) at time ``t`` (model time
        units) for the stock values ``state``."""
        env = dict(self.base)
        for n, f in self.funcs.items():
            env[n] = f(t)
        env.update(state)
        for n in self.order:
            if n in self.funcs:
                continue
            env[n] = self._eval(n, env, t)
        return env

    def _eval(self, n, env, t):
        try:
            return eval_expr(self.ir.variables[n].expr, env, self.ir, t, self.time.dt)
        except ZeroDivisionError:
            raise SimulationError(f"division by zero in {self.ir.variables[n].real_name!r} "
                                  f"at time {t}") from None

    def derivatives(self, env: Mapping[str, float], t: float) -> dict[str, float]:
        """Net flow of every stock (stock units per time unit) in the environment ``env``."""
        out = {}
        for s in self.stocks:
            try:
                out[s] = float(eval_expr(self.ir.variables[s].expr, env, self.ir, t,
                                         self.time.dt))
            except ZeroDivisionError:
                raise SimulationError(f"division by zero in the net flow of "
                                      f"{self.ir.variables[s].real_name!r} at time {t}") from None
        return out

    def initial_state(self, initial: Mapping[str, float] | None = None) -> dict[str, float]:
        """Initial values of all stocks, evaluated lazily in dependency order."""
        ir, t = self.ir, self.time.initial
        env = dict(self.base)
        for n, f in self.funcs.items():
            env[n] = f(t)
        state: dict[str, float] = {}
        given = {ir.resolve(k): float(v) for k, v in (initial or {}).items()}
        busy: set[str] = set()

        def resolve(name):
            if name in env:
                return env[name]
            v = ir.variables[name]
            if name in busy:
                raise ModelFileError(f"the initial values of {ir.path.name} are circular "
                                     f"through {v.real_name!r}; break the cycle with a "
                                     "constant initial value or ACTIVE INITIAL")
            busy.add(name)
            if v.kind == "stock":
                val = given[name] if name in given else float(
                    eval_expr(v.initial, env, ir, t, self.time.dt, resolve))
                state[name] = val
            else:
                e = v.initial if v.initial is not None else v.expr
                val = float(eval_expr(e, env, ir, t, self.time.dt, resolve))
            busy.discard(name)
            env[name] = val
            return val

        for s in self.stocks:
            resolve(s)
        return {s: state[s] for s in self.stocks}


#: Former private name of :class:`Evaluator` (kept so code written against it still runs).
_State = Evaluator


def evaluate(ir: ModelIR, state: Mapping[str, float], t: float | None = None,
             params: Mapping | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Values of all variables and the stock derivatives at one state.

    Parameters
    ----------
    ir : ModelIR
    state : mapping
        Value of every stock (``py_name`` or model name -> value, stock units).
    t : float, optional
        Time (model time units); default the initial time.
    params : mapping, optional
        Constant overrides (model names or py_names).

    Returns
    -------
    (values, ddt) : tuple of dict
        ``values`` of every variable (py_name -> float) and ``ddt`` (stock -> d/dt, stock
        units per time unit).
    """
    st = Evaluator(ir, params)
    t = st.time.initial if t is None else float(t)
    s = {ir.resolve(k): float(v) for k, v in state.items()}
    missing = set(st.stocks) - set(s)
    if missing:
        raise KeyError(f"state lacks stocks {sorted(missing)}")
    env = st.env_at(t, s)
    return env, st.derivatives(env, t)


def nonfinite_error(ir: ModelIR, times: np.ndarray, values: Mapping[str, np.ndarray],
                    first_run: int | None = None) -> SimulationError | None:
    """The one rule of every engine for NaN/inf outputs: a run whose values stop being finite
    numbers is numerically meaningless and is refused, naming the variable and the time.

    ``values`` are arrays by py_name, shape (T,) or (N, T). Reported is the earliest saved
    time at which a model variable (not an engine-internal one) is NaN or inf; at that time
    the first such variable in the model's order; in an ensemble (``first_run`` given) the
    first such run, counted from ``first_run``. Returns the error, or None if all finite.
    """
    best = None  # (time index, variable rank, name, run)
    for rank, (name, var) in enumerate(ir.variables.items()):
        if name not in values or var.internal:
            continue
        arr = np.asarray(values[name], dtype=float)
        bad = ~np.isfinite(arr)
        if not bad.any():
            continue
        bad2 = bad.reshape(-1, arr.shape[-1])
        ti = int(np.argmax(bad2.any(axis=0)))
        if best is None or ti < best[0]:
            best = (ti, rank, name, int(np.argmax(bad2[:, ti])))
    if best is None:
        return None
    ti, _, name, r = best
    arr = np.asarray(values[name], dtype=float).reshape(-1, len(times))
    run = f" (run {first_run + r})" if first_run is not None else ""
    return SimulationError(
        f"the run produced {arr[r, ti]} in {ir.variables[name].real_name!r} at time "
        f"{times[ti]:g}{run}; check the parameters that feed it (allow_nonfinite=True "
        "returns the values for diagnosis)")


def simulate(ir: ModelIR, params: Mapping | None = None, *, every_step: bool = False,
             initial: Mapping[str, float] | None = None,
             final_time: float | None = None,
             allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """Run the model with the pure-Python reference evaluator (Euler, PySD's numerics).

    Parameters
    ----------
    ir : ModelIR
    params : mapping, optional
        Overrides by model name or py_name: a number, a callable of time, or a pandas Series
        indexed by time (linearly interpolated, like PySD).
    every_step : bool
        Return every Euler step instead of the SAVEPER grid.
    initial : mapping, optional
        Initial stock values overriding the model's initial expressions.
    final_time : float, optional
        Override FINAL TIME.
    allow_nonfinite : bool
        Return NaN/inf values (IEEE arithmetic, as the ensemble with the same flag) instead
        of refusing them: by default a NaN or inf raises :class:`SimulationError` naming the
        variable and time (:func:`nonfinite_error`, the rule of every engine).

    Returns
    -------
    dict of numpy.ndarray
        ``"time"`` plus one array per variable (py_name), constants and lookups excluded.
    """
    p = dict(params or {})
    if final_time is not None:
        p["final_time"] = float(final_time)
    st = Evaluator(ir, p)
    ts = st.time
    dt, t = ts.dt, ts.initial
    prec = dt * 1e-5
    state = st.initial_state(initial)
    names = st.stocks + st.order
    rows: list[list[float]] = []
    times: list[float] = []

    def in_return(tt):
        if every_step:
            return True
        d = tt - ts.initial
        return d % ts.saveper < prec or -d % ts.saveper < prec

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while True:
            env = st.env_at(t, state)
            if in_return(t):
                times.append(t)
                rows.append([env[n] for n in names])
            if not t + prec < ts.final:
                break
            d = st.derivatives(env, t)
            state = {s: state[s] + d[s] * dt for s in st.stocks}
            for s in st.discrete:
                state[s] = d[s]
            for s in st.non_negative:
                state[s] = float(np.maximum(state[s], 0))
            t = t + dt
    arr = np.array(rows, dtype=float).reshape(len(rows), len(names))
    out = {"time": np.array(times)}
    for i, n in enumerate(names):
        out[n] = arr[:, i]
    if not allow_nonfinite:
        err = nonfinite_error(ir, out["time"], out)
        if err is not None:
            raise err
    return out
