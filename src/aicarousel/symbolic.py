"""Model file -> sympy system dx/dt = f(x, p, t), derived from the IR.

Stocks become state symbols, constants become parameter symbols (or numbers), and
auxiliaries are substituted, so each right-hand side is a closed-form expression in states,
parameters and the time symbol ``t``. Built-ins map to sympy: MIN/MAX -> ``Min``/``Max``,
IF THEN ELSE -> ``Piecewise``, XIDZ/ZIDZ -> ``Piecewise`` on ``|den| < 1e-6``, STEP/PULSE/
PULSE TRAIN/RAMP -> ``Piecewise`` in ``t`` with PySD's time comparisons, lookups ->
piecewise-linear ``Piecewise`` with flat extrapolation. Symbols are named by PySD's Python
names (``lab_revenue``), so ``system.states`` lines up with ``ir.stocks``.

Example
-------
>>> from aicarousel.ir import build_ir
>>> from aicarousel.symbolic import to_sympy
>>> sys_ = to_sympy(build_ir("models/core_loop_derived.mdl"))         # doctest: +SKIP
>>> f = sys_.lambdify()                                        # f(t, x, p) -> dx/dt
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np
import sympy as sp

from aicarousel.errors import UnsupportedFeatureError
from aicarousel.ir import (CONTROL_VARS, SMALL_VENSIM, Call, Lookup, ModelIR, Num, Op, Ref,
                           Time)

__all__ = ["SymbolicSystem", "to_sympy", "local_equations", "lookup_piecewise", "sym_number"]

T = sp.Symbol("t", real=True)



#: Largest size (nodes of the expression trees, a shared subexpression counted each time it
#: occurs) of the arguments for which MIN/MAX, ABS and the Piecewise of IF THEN ELSE, XIDZ,
#: lookups, STEP... are built by sympy's evaluating constructors. Those search the arguments
#: for simplifications (MIN/MAX: an order between every pair of arguments through
#: ``factor_terms`` of their difference; ABS: ``signsimp``; Piecewise: folding a condition that
#: holds a Piecewise), walking the trees without sharing: on the carousel, whose auxiliaries
#: are substituted into each other, that took 4-7 minutes and found nothing. Larger arguments
#: are kept as written, which has the same value (lambdify prints it). The textbook and SDXorg
#: models' arguments stay below 20 nodes, so their closed forms are sympy's canonical ones.
EVALUATE_MAX_NODES = 200


def _small(*exprs) -> bool:
    """True if the tree of each of ``exprs`` has at most EVALUATE_MAX_NODES nodes (the walk
    stops there, so the test costs at most that many steps however large the tree)."""
    for e in exprs:
        for n, _ in enumerate(sp.preorder_traversal(e)):
            if n >= EVALUATE_MAX_NODES:
                return False
    return True


def _piecewise(*pairs) -> sp.Expr:
    """``Piecewise(*pairs)``, kept as written when its arguments are large or sympy cannot
    build it.

    sympy canonicalises a Piecewise by folding its conditions and testing them with 0
    substituted for every symbol; a condition holding a MIN/MAX of a guarded ratio (a lookup,
    an IF, an XIDZ) then reaches ``Max(nan, ...)`` and sympy gives up with a ValueError. The
    unevaluated form has the same value and lambdify prints it. Large arguments: see
    EVALUATE_MAX_NODES.
    """
    pairs = [(sp.sympify(e), sp.sympify(c)) for e, c in pairs]
    if _small(*(x for p in pairs for x in p)):
        try:
            return sp.Piecewise(*pairs)
        except ValueError:
            pass
    from sympy.functions.elementary.piecewise import ExprCondPair
    return sp.Basic.__new__(sp.Piecewise, *(sp.Basic.__new__(ExprCondPair, e, c)
                                            for e, c in pairs))


def _function(f, *args) -> sp.Expr:
    """``f(*args)`` for MIN/MAX and ABS, kept as written when the arguments are large (see
    EVALUATE_MAX_NODES) or sympy cannot order them."""
    if _small(*args):
        try:
            return f(*args)
        except ValueError:
            # sympy tests the arguments' order by substituting 0 for every symbol and gives
            # up on a nan; keep MIN/MAX as written (lambdify prints it as numpy's)
            if f not in (sp.Min, sp.Max):
                raise
    if f is sp.Abs:
        return f(*args, evaluate=False)
    # Min/Max(evaluate=False) would still sort the arguments, walking the trees
    return sp.Basic.__new__(f, *args)


def sym_number(v: float) -> sp.Expr:
    """Exact sympy number for an integer-valued float, else a Float (53-bit, exact)."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return sp.Integer(int(v))
    return sp.Float(v)


def lookup_piecewise(table: tuple, x: sp.Expr) -> sp.Expr:
    """Piecewise-linear interpolation of ``table = (xs, ys)`` at ``x``, flat outside.

    Parameters
    ----------
    table : tuple of sequences
        Increasing x points and their y values.
    x : sympy.Expr
        Argument.

    Returns
    -------
    sympy.Piecewise
    """
    xs, ys = table
    xs = [sym_number(v) for v in xs]
    ys = [sym_number(v) for v in ys]
    if len(xs) == 1:
        return ys[0]
    pieces = [(ys[0], x <= xs[0])]
    for i in range(len(xs) - 1):
        x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
        if x1 == x0:
            continue
        pieces.append((y0 + (y1 - y0) * (x - x0) / (x1 - x0), x <= x1))
    pieces.append((ys[-1], True))
    return _piecewise(*pieces)


def _select(condlist, choicelist, default=np.nan):
    """``numpy.select`` that accepts scalar conditions (broadcast against the choices)."""
    arrs = np.broadcast_arrays(*[np.asarray(c) for c in condlist],
                               *[np.asarray(c, dtype=float) for c in choicelist])
    n = len(condlist)
    return np.select([a.astype(bool) for a in arrs[:n]], arrs[n:], default=default)


def _zoo_to_nan(e: sp.Basic, memo: dict) -> sp.Basic:
    """``e.xreplace({zoo: nan})`` visiting each shared subexpression once (``memo`` by id);
    xreplace walks the tree, which on the carousel's substituted expressions is millions of
    nodes for a few thousand distinct ones.

    A node sympy refuses to rebuild with nan (a comparison kept as written holding x/0 in a
    branch its guard never selects: "Invalid NaN comparison") is rebuilt as written; numpy
    evaluates every branch and the guard picks the finite one.
    """
    if e is sp.zoo:
        return sp.nan
    key = id(e)
    if key not in memo:
        args = [_zoo_to_nan(a, memo) for a in e.args]
        new = e
        if any(a is not b for a, b in zip(args, e.args)):
            try:
                new = e.func(*args)
            except (TypeError, ValueError):
                new = sp.Basic.__new__(e.func, *args)
        memo[key] = (new, e)  # e kept alive: ids stay unique
    return memo[key][0]


def _trunc(x):
    return _piecewise((sp.floor(x), x >= 0), (sp.ceiling(x), True))


@dataclass
class SymbolicSystem:
    """dx/dt = f(x, p, t) of a model.

    Attributes
    ----------
    ir : ModelIR
        The model.
    states : list of sympy.Symbol
        One per stock, in ``ir.stocks`` order (symbol name = py_name).
    params : dict
        ``py_name -> sympy.Symbol`` of constants kept symbolic.
    param_values : dict
        ``py_name -> float`` baseline values of those constants.
    rhs : list of sympy.Expr
        d/dt of each stock.
    aux : dict
        ``py_name -> sympy.Expr`` of every auxiliary (states, params, t substituted).
    t : sympy.Symbol
        Time symbol.
    """

    ir: ModelIR
    states: list
    params: dict
    param_values: dict
    rhs: list
    aux: dict
    t: sp.Symbol = T
    _funcs: dict = field(default_factory=dict, repr=False)

    @property
    def state_names(self) -> list[str]:
        """Stock py_names in state order."""
        return [s.name for s in self.states]

    @property
    def param_names(self) -> list[str]:
        """Parameter py_names in the order of the ``p`` vector of :meth:`lambdify`."""
        return list(self.params)

    def param_vector(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        """Baseline parameter vector, with overrides by py_name or model name."""
        p = dict(self.param_values)
        for k, v in (overrides or {}).items():
            p[self.ir.resolve(k)] = float(v)
        return np.array([p[n] for n in self.params], dtype=float)

    def lambdify(self, exprs: Iterable[sp.Expr] | None = None) -> Callable:
        """Compile expressions (default the RHS) to ``f(t, x, p) -> array``.

        ``x`` and ``p`` may carry extra trailing axes (vectorised evaluation): ``x`` has shape
        ``(n_states, ...)`` and ``p`` ``(n_params, ...)``.
        """
        exprs = self.rhs if exprs is None else list(exprs)
        key = tuple(exprs) if exprs is not self.rhs else "rhs"
        if key not in self._funcs:
            # x/0 with a literal 0 in a branch that a guard (IF THEN ELSE, XIDZ, ZIDZ) never
            # selects becomes sympy's complex infinity, which has no numpy spelling: nan
            memo: dict = {}
            exprs = [_zoo_to_nan(sp.sympify(e), memo) for e in exprs]
            # use_imps=False: no implemented_function here, and looking for them walks every
            # tree without sharing (seconds on the carousel)
            f = sp.lambdify((self.t, list(self.states), list(self.params.values())),
                            list(exprs), modules=[{"select": _select}, "numpy"], cse=True,
                            use_imps=False)
            self._funcs[key] = f
        f = self._funcs[key]

        def call(t, x, p=None):
            p = self.param_vector() if p is None else p
            with np.errstate(all="ignore"):
                out = f(t, x, p)
            return np.array([np.broadcast_to(o, np.shape(x)[1:]) if np.ndim(x) > 1 else o
                             for o in out], dtype=float)
        return call

    def jacobian(self) -> sp.Matrix:
        """Symbolic Jacobian d(rhs)/d(states)."""
        return sp.Matrix(self.rhs).jacobian(sp.Matrix(self.states))


class _Translator:
    def __init__(self, ir: ModelIR, symbolic: set[str], dt: float) -> None:
        self.ir = ir
        self.dt = dt
        self.symbols: dict[str, sp.Symbol] = {}
        self.memo: dict[str, sp.Expr] = {}
        self.symbolic = symbolic
        self.current = ""

    def unsupported(self, what):
        real = self.ir.variables[self.current].real_name if self.current else "?"
        return UnsupportedFeatureError(
            f"variable {real!r}: {what} has no symbolic translation; the symbolic analysis "
            "supports the functions listed in aicarousel.symbolic")

    def ref(self, name: str) -> sp.Expr:
        if name in self.memo:
            return self.memo[name]
        v = self.ir.variables[name]
        if v.kind == "stock" or (v.kind == "constant" and name in self.symbolic):
            e = sp.Symbol(name, real=True)
            self.symbols[name] = e
        elif v.kind == "constant":
            e = sym_number(v.expr.value)
        elif v.kind == "aux":
            prev, self.current = self.current, name
            e = self.num(v.expr)
            self.current = prev
        else:
            raise self.unsupported(f"lookup {v.real_name!r} used without argument")
        self.memo[name] = e
        return e

    def boolean(self, e) -> sp.Basic:
        """Translate ``e`` as a condition."""
        if isinstance(e, Op):
            o = e.op
            if o in ("<", ">", "<=", ">=", "=", "<>"):
                a, b = self.num(e.args[0]), self.num(e.args[1])
                return {"<": sp.Lt, ">": sp.Gt, "<=": sp.Le, ">=": sp.Ge, "=": sp.Eq,
                        "<>": sp.Ne}[o](a, b)
            if o == "and":
                return sp.And(self.boolean(e.args[0]), self.boolean(e.args[1]))
            if o == "or":
                return sp.Or(self.boolean(e.args[0]), self.boolean(e.args[1]))
            if o == "not":
                return sp.Not(self.boolean(e.args[0]))
        return sp.Ne(self.num(e), 0)

    def num(self, e) -> sp.Expr:
        if isinstance(e, Num):
            return sym_number(e.value)
        if isinstance(e, Ref):
            return self.ref(e.name)
        if isinstance(e, Time):
            return T
        if isinstance(e, Lookup):
            return lookup_piecewise(self.ir.variables[e.table_name].table, self.num(e.x))
        if isinstance(e, Op):
            o = e.op
            if o == "neg":
                return -self.num(e.args[0])
            if o in ("+", "-", "*", "/", "^"):
                a, b = self.num(e.args[0]), self.num(e.args[1])
                return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                        "/": lambda: a / b, "^": lambda: a ** b}[o]()
            return _piecewise((1, self.boolean(e)), (0, True))
        if isinstance(e, Call):
            return self.call(e)
        raise TypeError(e)

    def call(self, e: Call) -> sp.Expr:
        f = e.func
        if f == "if_then_else":
            c = self.boolean(e.args[0])
            yes, no = self.num(e.args[1]), self.num(e.args[2])
            # the condition can hold a MIN/MAX of a guarded ratio (see _piecewise)
            return _piecewise((yes, c), (no, True))
        a = [self.num(x) for x in e.args]
        small = sp.Float(SMALL_VENSIM)
        dt = sym_number(self.dt)
        simple = {"min": sp.Min, "max": sp.Max, "abs": sp.Abs, "exp": sp.exp, "ln": sp.log,
                  "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
                  "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "sinh": sp.sinh,
                  "cosh": sp.cosh, "tanh": sp.tanh}
        if f in simple:
            if f in ("min", "max", "abs"):
                return _function(simple[f], *a)
            return simple[f](*a)
        if f == "log":
            return sp.log(a[0]) / sp.log(a[1])
        if f in ("xidz", "zidz"):
            alt = a[2] if f == "xidz" else sp.Integer(0)
            if a[1].is_number:  # decide now: sympy would evaluate x/0 in the unused branch
                return alt if abs(complex(a[1])) < SMALL_VENSIM else a[0] / a[1]
            # unevaluated: Piecewise's canonicalisation substitutes the guard into the other
            # branch and can reach Max(nan, ...), which sympy refuses to build
            guard = _function(sp.Abs, a[1]) < small
            return _piecewise((alt, guard), (a[0] / a[1], True))
        if f == "step":
            return a[0] * _piecewise((1, T + dt / 2 > a[1]), (0, True))
        if f == "ramp":
            final = T if len(a) == 2 else _function(sp.Min, a[2], T)
            return _piecewise((a[0] * (final - a[1]), T + small > a[1]), (0, True))
        if f == "pulse":
            return _piecewise((1, sp.And(T >= a[0] - small, T < a[0] + a[1])), (0, True))
        if f == "pulse_train":
            start, rep, width, end = a
            return _piecewise(
                (1, sp.And(T >= start, T < end, sp.Mod(T - start + small, rep) < width)),
                (0, True))
        if f == "integer":
            return _trunc(a[0])
        if f in ("quantum", "modulo"):
            q = _piecewise((a[0], a[1] < small), (a[1] * _trunc(a[0] / a[1]), True))
            return q if f == "quantum" else a[0] - q
        raise self.unsupported(f"the function {f.upper()}")


def local_equations(ir: ModelIR, params: Iterable[str] | None = None) -> dict[str, sp.Expr]:
    """Each aux's equation and each stock's net flow in terms of its direct inputs only.

    Auxiliaries and stocks referenced appear as symbols named by their py_name (not
    substituted), so ``diff(eq[y], Symbol(x, real=True))`` is the link gain x -> y.
    Constants in ``params`` (default all but control variables) stay symbolic.
    """
    consts = ir.constants
    names = ([n for n in consts if n not in CONTROL_VARS] if params is None
             else [ir.resolve(p) for p in params])
    out = {}
    for n, v in ir.variables.items():
        if v.kind not in ("aux", "stock"):
            continue
        tr = _Translator(ir, set(names), ir.time.dt)
        for m, w in ir.variables.items():
            if w.kind in ("aux", "stock"):
                tr.memo[m] = sp.Symbol(m, real=True)
        tr.current = n
        out[n] = tr.num(v.expr)
    return out


def to_sympy(ir: ModelIR, params: Iterable[str] | None = None,
             values: Mapping[str, float] | None = None) -> SymbolicSystem:
    """Translate a model IR into a sympy system.

    Parameters
    ----------
    ir : ModelIR
        The model (see :func:`aicarousel.ir.build_ir`).
    params : iterable of str, optional
        Constants (py_names or model names) kept as symbols; default every constant except
        the control variables. The others are replaced by their numbers.
    values : mapping, optional
        Baseline values overriding the model's for the numeric constants and
        ``param_values``.

    Returns
    -------
    SymbolicSystem

    Raises
    ------
    aicarousel.errors.UnsupportedFeatureError
        If the model has no stocks or uses a function with no translation.
    """
    if not ir.stocks:
        raise UnsupportedFeatureError(
            f"model {ir.path.name} has no stocks: there is no dynamic system to analyse; "
            "add at least one INTEG")
    discrete = [v for v in ir.variables.values() if getattr(v, "discrete", False)]
    if discrete:
        raise UnsupportedFeatureError(
            f"model {ir.path.name}: {discrete[0].real_name} is a discrete state (DELAY FIXED, "
            "or DELAY N with a varying delay time), which no differential equation describes; "
            "the symbolic analysis cannot use this model (the IR and the ensemble run it)")
    consts = ir.constants
    vals = {ir.resolve(k): float(v) for k, v in (values or {}).items()}
    if params is None:
        names = [n for n in consts if n not in CONTROL_VARS]
    else:
        names = [ir.resolve(p) for p in params]
        bad = [n for n in names if n not in consts]
        if bad:
            raise UnsupportedFeatureError(f"{bad} are not constants of {ir.path.name}; only "
                                          "constants can be symbolic parameters")
    # numeric constants take overridden values
    if vals:
        import copy
        ir = copy.copy(ir)
        ir.variables = dict(ir.variables)
        for n, v in vals.items():
            if n not in names:
                var = copy.copy(ir.variables[n])
                var.expr = Num(v)
                ir.variables[n] = var
    tr = _Translator(ir, set(names), ir.time.dt)
    states = [sp.Symbol(s, real=True) for s in ir.stocks]
    for s, sym in zip(ir.stocks, states):
        tr.memo[s] = sym
    rhs = []
    for s in ir.stocks:
        tr.current = s
        rhs.append(tr.num(ir.variables[s].expr))
    aux = {}
    for n in ir.order:
        tr.current = n
        aux[n] = tr.ref(n)
    psyms = {n: sp.Symbol(n, real=True) for n in names}
    for n in names:
        tr.memo.setdefault(n, psyms[n])
    pvals = {n: vals.get(n, consts[n]) for n in names}
    return SymbolicSystem(ir=ir, states=states, params=psyms, param_values=pvals, rhs=rhs,
                          aux=aux)
