"""Vectorised ensemble engine: N runs of a model at once, compiled from the shared IR.

The model file is parsed once into :class:`aicarousel.ir.ModelIR`; this module turns that IR into
Python source (one assignment of numpy operations per variable), compiles it once per model hash
and per set of time-varying inputs, and runs it on state arrays of shape ``(N,)``. Nothing here
re-types an equation: every expression comes from the IR.

Numerics follow PySD exactly (explicit Euler, time advanced by repeated addition of TIME STEP,
PySD's STEP/PULSE/RAMP time comparisons, XIDZ/ZIDZ threshold 1e-6, lookups interpolated linearly
with flat extrapolation, time series overrides interpolated with ``np.interp``), so a run agrees
with PySD to a relative 1e-9.

Variables are split in two classes at compile time:

* *static*: depend only on constants (possibly per-run arrays); computed once per chunk;
* *dynamic*: depend on a stock, on ``Time`` or on a time-varying input; computed every step.

Only the saved steps of the requested outputs are stored, as ``(n_saved, N)`` float64 blocks.

Typical use::

    from aicarousel.ensemble import compile_model
    cm = compile_model()                                  # the carousel model
    ds = cm.run({"AI demand multiplier": np.linspace(0.5, 1.5, 1000)},
                outputs=["Cloud Debt", "Lab Cash"])      # Dataset, dims (run, time)
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ParameterValueError, UnknownParameterError, UnsupportedFeatureError

#: Vensim's "zero" for XIDZ, ZIDZ, QUANTUM and PULSE (PySD's ``SMALL_VENSIM``).
SMALL_VENSIM = 1e-6
#: Relative precision PySD uses for final time and saving times.
_RPREC = 1e-5
#: Default number of runs evaluated together (fits the working set in cache; measured best).
DEFAULT_CHUNK = 4096

__all__ = [
    "CompiledModel",
    "compile_model",
    "SMALL_VENSIM",
    "DEFAULT_CHUNK",
]


# ----------------------------------------------------------------------------------------------
# runtime helpers used by the generated code (all vectorised; scalars work too)
# ----------------------------------------------------------------------------------------------
def _xidz(a, b, x):
    return np.where(np.abs(b) < SMALL_VENSIM, x, np.divide(a, b))  # never ZeroDivisionError


def _zidz(a, b):
    return np.where(np.abs(b) < SMALL_VENSIM, 0.0, np.divide(a, b))


def _pulse(t, start, width):
    return np.where((start - SMALL_VENSIM <= t) & (t < start + width), 1.0, 0.0)


def _pulse_train(t, start, width, repeat, end):
    on = (start <= t) & (t < end) & (np.mod(t - start + SMALL_VENSIM, repeat) < width)
    single = (start - SMALL_VENSIM <= t) & (t < start + width)
    return np.where(repeat == 0, np.where(single, 1.0, 0.0), np.where(on, 1.0, 0.0))


def _ramp(t, slope, start, finish=None):
    final = t if finish is None else np.minimum(finish, t)
    return (t + SMALL_VENSIM > start) * slope * (final - start)


def _quantum(a, b):
    return np.where(b < SMALL_VENSIM, a, b * np.trunc(a / np.where(b == 0, 1.0, b)))


def _modulo(x, m):
    return x - _quantum(x, m)


def _pow_one(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        try:
            r = a ** b
        except (ZeroDivisionError, OverflowError):
            return math.inf
        return r if isinstance(r, float) else math.nan  # complex -> nan


_VPOW_SOURCE = r"""
#include <math.h>
/* out[i] = pow(a[i], b[i or 0]): the C library's pow, one element at a time. */
void aicarousel_vpow(const double *a, const double *b, double *out, long n, long b_step) {
    for (long i = 0; i < n; ++i) out[i] = pow(a[i], b[i * b_step]);
}
"""
_VPOW: Any = None  # ctypes function, False when unavailable, None before the first try


def _vector_pow():
    """A tiny C loop over the C library's ``pow``, compiled once into the cache directory.

    Calling ``pow`` from C gives exactly the numbers Python's ``math.pow`` gives (the same C
    function), about three times faster than a Python-level loop. Without a C compiler (or
    with ``AICAROUSEL_NO_CC=1``) the engine falls back to the Python loop: same numbers.
    """
    global _VPOW
    if _VPOW is not None:
        return _VPOW or None
    _VPOW = False
    if os.environ.get("AICAROUSEL_NO_CC"):
        return None
    try:
        import ctypes
        import platform
        import shutil
        import subprocess


        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            return None
        from . import cache

        key = hashlib.sha256((_VPOW_SOURCE + platform.platform() + cc).encode()).hexdigest()
        lib = cache.private_dir("ensemble") / f"vpow-{key[:16]}.so"
        context = cache.context_string(kind="vpow", key=key)
        if not lib.is_file() or cache.read_verified(lib, context) is None:  # never dlopen a planted file
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
                src = Path(tmp) / "vpow.c"
                src.write_text(_VPOW_SOURCE)
                out = Path(tmp) / "vpow.so"
                subprocess.run([cc, "-O2", "-fno-builtin", "-fno-fast-math", "-fPIC", "-shared",
                                "-o", str(out), str(src), "-lm"], check=True,
                               capture_output=True, timeout=60)
                cache.write_signed(lib, out.read_bytes(), context)
        fn = ctypes.CDLL(str(lib)).aicarousel_vpow
        dp = ctypes.POINTER(ctypes.c_double)
        fn.argtypes = [dp, dp, dp, ctypes.c_long, ctypes.c_long]
        fn.restype = None
        # self-check against math.pow before trusting it
        xs = np.array([0.5, 1.7, 3.3, 123.4, 1e-3, 2.0]), np.array([-0.8, 0.37, 2.5, -1.3, 0.5, 3.0])
        got = np.empty(6)
        fn(xs[0].ctypes.data_as(dp), xs[1].ctypes.data_as(dp), got.ctypes.data_as(dp), 6, 1)
        if not all(g == math.pow(a, b) for g, a, b in zip(got, xs[0], xs[1])):
            return None
        _VPOW = (fn, dp)
    except Exception:  # noqa: BLE001 - any failure: use the Python loop
        _VPOW = False
    return _VPOW or None


def _pow(a, b):
    """Vensim ``^`` with the C library's ``pow`` element by element.

    numpy's vectorised ``power`` (SIMD) differs from the C library's ``pow`` in the last bit for
    a few percent of inputs, and PySD evaluates ``^`` with Python floats (the C library). This
    model amplifies such one-ulp differences in some parameter regions, so the engine uses the
    C library too: results are then bit-identical to PySD.
    """
    if np.ndim(a) == 0 and np.ndim(b) == 0:
        return _pow_one(float(a), float(b))
    a_arr = np.asarray(a, float)
    b_arr = np.asarray(b, float)
    shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
    vp = _vector_pow()
    if vp is not None:
        fn, dp = vp
        a_c = np.ascontiguousarray(np.broadcast_to(a_arr, shape)).ravel()
        if b_arr.ndim == 0:
            b_c, step = np.array([float(b_arr)]), 0
        else:
            b_c, step = np.ascontiguousarray(np.broadcast_to(b_arr, shape)).ravel(), 1
        out = np.empty(a_c.size)
        fn(a_c.ctypes.data_as(dp), b_c.ctypes.data_as(dp), out.ctypes.data_as(dp), a_c.size,
           step)
        return out.reshape(shape)
    a_arr, b_arr = np.broadcast_arrays(a_arr, b_arr)
    flat_a = a_arr.ravel().tolist()
    flat_b = b_arr.ravel().tolist() if np.ndim(b) else itertools.repeat(float(b))
    try:
        out = np.fromiter(map(math.pow, flat_a, flat_b), float, count=len(flat_a))
    except (ValueError, OverflowError):
        flat_b = b_arr.ravel().tolist()
        out = np.fromiter(map(_pow_one, flat_a, flat_b), float, count=len(flat_a))
    return out.reshape(a_arr.shape)


_RUNTIME = {
    "np": np,
    "_xidz": _xidz,
    "_zidz": _zidz,
    "_pulse": _pulse,
    "_pulse_train": _pulse_train,
    "_ramp": _ramp,
    "_quantum": _quantum,
    "_modulo": _modulo,
    "_pow": _pow,
}

_BINARY = {"+": "+", "-": "-", "*": "*", "/": "/",
           "<": "<", ">": ">", "<=": "<=", ">=": ">=", "=": "==", "<>": "!="}
_UNARY_NP = {"abs": "np.abs", "exp": "np.exp", "ln": "np.log", "sqrt": "np.sqrt",
             "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "arcsin": "np.arcsin",
             "arccos": "np.arccos", "arctan": "np.arctan", "sinh": "np.sinh",
             "cosh": "np.cosh", "tanh": "np.tanh", "integer": "np.trunc"}


# ----------------------------------------------------------------------------------------------
# expression walking (IR Expr nodes are matched by class name so this module only needs the IR
# objects, not a particular import path)
# ----------------------------------------------------------------------------------------------
def _kind(node) -> str:
    return type(node).__name__


def _children(node) -> Iterator[Any]:
    k = _kind(node)
    if k in ("Op", "Call"):
        yield from node.args
    elif k == "Lookup":
        yield node.x


def _refs(node, acc: set[str] | None = None) -> set[str]:
    """Names referenced by an expression (variables and lookup tables)."""
    acc = set() if acc is None else acc
    if node is None:
        return acc
    k = _kind(node)
    if k == "Ref":
        acc.add(node.name)
    elif k == "Lookup":
        acc.add(node.table_name)
    for c in _children(node):
        _refs(c, acc)
    return acc


def _uses_time(node) -> bool:
    if node is None:
        return False
    k = _kind(node)
    if k == "Time":
        return True
    if k == "Call" and node.func in {"step", "pulse", "pulse_train", "ramp"}:
        return True
    return any(_uses_time(c) for c in _children(node))


class _Codegen:
    """Turn IR expressions into numpy source text.

    With ``hoist`` (a dict) and ``dynamic`` (names recomputed each step), every compound
    subexpression that depends on neither is replaced by a name ``h_<k>`` computed once before
    the time loop (identical subtrees share one name). Whole subtrees are hoisted, so the
    floating-point operation order, and hence every result bit, is unchanged.
    """

    def __init__(self, var_name: str, hoist: dict | None = None,
                 dynamic: set[str] | None = None):
        self.var_name = var_name  # variable being compiled, for error messages
        self.hoist = hoist
        self.dynamic = dynamic or set()

    def _static(self, node) -> bool:
        return not _uses_time(node) and not (_refs(node) & self.dynamic)

    def __call__(self, node) -> str:
        k = _kind(node)
        if self.hoist is not None and k in ("Op", "Call", "Lookup") and self._static(node):
            name = self.hoist.get(node)
            if name is None:
                name = f"h_{len(self.hoist)}"
                self.hoist[node] = name
            return name
        if k == "Num":
            v = float(node.value)
            if math.isinf(v):
                return "np.inf" if v > 0 else "(-np.inf)"
            if math.isnan(v):
                return "np.nan"
            return repr(v)
        if k == "Ref":
            return "v_" + node.name
        if k == "Time":
            return "t"
        if k == "Lookup":
            return f"np.interp({self(node.x)}, LX_{node.table_name}, LY_{node.table_name})"
        if k == "Op":
            return self._op(node)
        if k == "Call":
            return self._call(node)
        raise UnsupportedFeatureError(
            f"variable {self.var_name!r}: expression node {k!r} is not supported by the "
            "ensemble engine; use aicarousel.model.run (PySD) for this model")

    def _op(self, node) -> str:
        op, a = node.op, [self(x) for x in node.args]
        if op == "^" and len(a) == 2:
            return f"_pow({a[0]}, {a[1]})"
        if op == "/" and not _refs(node) and not _uses_time(node):
            return f"np.divide({a[0]}, {a[1]})"  # numbers only: inf/nan, not ZeroDivisionError
        if op in _BINARY and len(a) == 2:
            return f"({a[0]} {_BINARY[op]} {a[1]})"
        if op == "neg" or (op == "-" and len(a) == 1):
            return f"(-{a[0]})"
        if op == "+" and len(a) == 1:
            return a[0]
        if op == "and":
            return f"np.logical_and({a[0]}, {a[1]})"
        if op == "or":
            return f"np.logical_or({a[0]}, {a[1]})"
        if op == "not":
            return f"np.logical_not({a[0]})"
        raise UnsupportedFeatureError(
            f"variable {self.var_name!r}: operator {op!r} with {len(a)} operand(s) is not "
            "supported by the ensemble engine")

    def _call(self, node) -> str:
        f, a = node.func.lower(), [self(x) for x in node.args]
        if f in ("min", "max") and len(a) >= 2:
            fn = "np.minimum" if f == "min" else "np.maximum"
            out = a[0]
            for x in a[1:]:
                out = f"{fn}({out}, {x})"
            return out
        if f in _UNARY_NP and len(a) == 1:
            return f"{_UNARY_NP[f]}({a[0]})"
        if f == "log":
            if len(a) == 2:
                return f"(np.log({a[0]})/np.log({a[1]}))"
            return f"np.log10({a[0]})"
        if f == "power" and len(a) == 2:
            return f"_pow({a[0]}, {a[1]})"
        if f == "pi" and not a:
            return "np.pi"
        if f == "if_then_else" and len(a) == 3:
            return f"np.where({a[0]}, {a[1]}, {a[2]})"
        if f == "xidz" and len(a) == 3:
            return f"_xidz({a[0]}, {a[1]}, {a[2]})"
        if f == "zidz" and len(a) == 2:
            return f"_zidz({a[0]}, {a[1]})"
        if f == "step" and len(a) == 2:
            return f"({a[0]} * ((t + half_dt) > {a[1]}))"
        if f == "pulse" and len(a) in (1, 2):
            width = a[1] if len(a) == 2 else "half_dt"
            return f"_pulse(t, {a[0]}, {width})"
        if f == "pulse_train" and len(a) == 4:
            return f"_pulse_train(t, {a[0]}, {a[2]}, {a[1]}, {a[3]})"
        if f == "ramp" and len(a) in (2, 3):
            return f"_ramp(t, {', '.join(a)})"
        if f == "quantum" and len(a) == 2:
            return f"_quantum({a[0]}, {a[1]})"
        if f == "modulo" and len(a) == 2:
            return f"_modulo({a[0]}, {a[1]})"
        raise UnsupportedFeatureError(
            f"variable {self.var_name!r}: function {node.func.upper()!r} with {len(a)} "
            "argument(s) is not supported by the ensemble engine; use aicarousel.model.run "
            "(PySD) for this model")


# ----------------------------------------------------------------------------------------------
# time grid (identical float arithmetic to PySD's Time object)
# ----------------------------------------------------------------------------------------------
def time_grid(initial: float, final: float, dt: float, saveper: float) -> tuple[np.ndarray, np.ndarray]:
    """Integration times and save flags exactly as PySD produces them.

    Parameters
    ----------
    initial, final : float
        INITIAL TIME and FINAL TIME (model time units, years here).
    dt : float
        TIME STEP (years).
    saveper : float
        SAVEPER (years).

    Returns
    -------
    times : numpy.ndarray
        Every integration time, built by repeated addition of ``dt`` (as PySD does).
    save : numpy.ndarray of bool
        True where PySD stores an output row.
    """
    if not dt > 0:
        raise ParameterValueError(f"TIME STEP must be > 0, got {dt}; fix the time step")
    if not final > initial:
        raise ParameterValueError(
            f"FINAL TIME ({final}) must be greater than INITIAL TIME ({initial})")
    if not saveper > 0:
        raise ParameterValueError(f"SAVEPER must be > 0, got {saveper}")
    times = []
    t = initial
    while t + dt * _RPREC < final:
        times.append(t)
        t = t + dt
    times.append(t)
    times = np.asarray(times, dtype=float)
    prec = dt * _RPREC
    delay = times - initial
    save = (np.mod(delay, saveper) < prec) | (np.mod(-delay, saveper) < prec)
    return times, save


# ----------------------------------------------------------------------------------------------
# compiled model
# ----------------------------------------------------------------------------------------------
@dataclass
class _Program:
    source: str
    func: Callable
    outputs: tuple[str, ...]


@dataclass
class CompiledModel:
    """A model compiled for vectorised ensembles.

    Build it with :func:`compile_model` (cached by model hash). ``run`` evaluates N runs and
    returns an :class:`xarray.Dataset`; ``run_arrays`` is the same without xarray (hot path).

    Attributes
    ----------
    ir : aicarousel.ir.ModelIR
        The parsed model.
    defaults : dict of str to float
        Default value of every constant, by py_name.
    """

    ir: Any
    defaults: dict[str, float] = field(default_factory=dict)
    _programs: dict = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    # -- names ---------------------------------------------------------------------------------
    def __post_init__(self):
        ir = self.ir
        self._by_real = {v.real_name: k for k, v in ir.variables.items()}
        self._by_real_lower = {v.real_name.lower(): k for k, v in ir.variables.items()}
        self._order_all = self._init_order()
        for name, value in ir.constants.items():  # every constant is a number in the IR
            self.defaults[name] = float(value)
        self._lookups = {}
        for name, var in ir.variables.items():
            if var.kind == "lookup":
                x, y = var.table
                self._lookups[name] = (np.asarray(x, float), np.asarray(y, float))

    @property
    def model_hash(self) -> str:
        """SHA-256 of the model file the IR was built from."""
        return self.ir.sha256

    def py_name(self, name: str, *, kinds: Iterable[str] | None = None, what: str = "variable") -> str:
        """Resolve a Vensim name (or py_name) to the py_name, with a helpful error.

        Parameters
        ----------
        name : str
            Vensim name such as ``"Cloud Debt"`` (case-insensitive) or py_name ``cloud_debt``.
        kinds : iterable of str, optional
            Allowed variable kinds (e.g. ``{"constant"}``).
        what : str
            Word used in the error message ("parameter", "output").

        Returns
        -------
        str
            The py_name.

        Raises
        ------
        UnknownParameterError
            Unknown name, or a name of the wrong kind; the message lists close names.
        """
        ir = self.ir
        key = self._by_real.get(name) or self._by_real_lower.get(str(name).lower())
        if key is None and name in ir.variables:
            key = name
        allowed = None if kinds is None else set(kinds)
        if key is None or (allowed is not None and ir.variables[key].kind not in allowed):
            pool = [v.real_name for v in ir.variables.values()
                    if not v.internal and (allowed is None or v.kind in allowed)]
            from .params import did_you_mean  # the one name resolver's suggestions
            hint = did_you_mean(name, pool)
            if key is not None:
                raise UnknownParameterError(
                    f"{what} {name!r} is a {ir.variables[key].kind}, not one of "
                    f"{sorted(allowed)}{hint}")
            raise UnknownParameterError(f"unknown {what} {name!r} in the model{hint}")
        return key

    def real_name(self, py_name: str) -> str:
        """Vensim name of a py_name."""
        return self.ir.variables[py_name].real_name

    def output_names(self) -> list[str]:
        """Vensim names of every non-internal, non-lookup variable (possible outputs)."""
        return [v.real_name for v in self.ir.variables.values()
                if not v.internal and v.kind not in ("lookup",)]

    # -- dependency analysis -------------------------------------------------------------------
    def _deps_init(self, name: str) -> set[str]:
        var = self.ir.variables[name]
        if var.kind == "stock" or (var.kind == "aux" and var.initial is not None):
            return _refs(var.initial)
        if var.kind == "lookup":
            return set()
        return _refs(var.expr)

    def _init_order(self) -> list[str]:
        """All variables in the order needed to evaluate them at the initial time."""
        ir = self.ir
        order, state = [], {}

        def visit(n, path):
            s = state.get(n)
            if s == 2:
                return
            if s == 1:
                cyc = " -> ".join(ir.variables[p].real_name for p in path + [n])
                raise UnsupportedFeatureError(
                    f"circular initialisation among {cyc}; Vensim needs an INITIAL value")
            state[n] = 1
            for d in sorted(self._deps_init(n)):
                if d in ir.variables:
                    visit(d, path + [n])
            state[n] = 2
            order.append(n)

        for n in ir.variables:
            visit(n, [])
        return order

    def _dynamic_set(self, ts_names: frozenset[str]) -> set[str]:
        """Variables that must be recomputed every step."""
        ir = self.ir
        dyn = set(ts_names) | {n for n, v in ir.variables.items() if v.kind == "stock"}
        changed = True
        aux = [n for n, v in ir.variables.items() if v.kind not in ("stock", "lookup")
               and n not in ts_names]
        time_dep = {n for n in aux if _uses_time(ir.variables[n].expr)}
        dyn |= time_dep
        while changed:
            changed = False
            for n in aux:
                if n not in dyn and (_refs(ir.variables[n].expr) & dyn):
                    dyn.add(n)
                    changed = True
        return dyn

    # -- code generation -----------------------------------------------------------------------
    def _program(self, ts_names: frozenset[str], outputs: tuple[str, ...]) -> _Program:
        key = (ts_names, outputs)
        with self._lock:
            prog = self._programs.get(key)
            if prog is None:
                prog = self._generate(ts_names, outputs)
                self._programs[key] = prog
        return prog

    def _generate(self, ts_names: frozenset[str], outputs: tuple[str, ...]) -> _Program:
        ir = self.ir
        dyn = self._dynamic_set(ts_names)
        stocks = [n for n, v in ir.variables.items() if v.kind == "stock"]
        aux_order = [n for n in ir.order if n not in ts_names and ir.variables[n].kind
                     not in ("stock", "lookup", "constant")]
        # only what the stocks' flows and the requested outputs need is computed each step
        needed: set[str] = set()
        todo = [n for n in stocks] + list(outputs)
        while todo:
            n = todo.pop()
            if n in needed or n not in ir.variables:
                continue
            needed.add(n)
            todo.extend(_refs(ir.variables[n].expr))
        dyn_aux = [n for n in aux_order if n in dyn and n in needed]
        L = ["def simulate(P, TS, times, save, n, dt, O):",
             "    half_dt = dt / 2",
             "    t = times[0]",
             "    k = 0"]
        for name in self.ir.variables:
            if ir.variables[name].kind == "lookup":
                L.append(f"    LX_{name}, LY_{name} = LOOKUPS[{name!r}]")
        # initial evaluation in dependency order (every variable, at the initial time)
        for name in self._order_all:
            var = ir.variables[name]
            if name in ts_names:
                L.append(f"    v_{name} = TS[{name!r}][0]")
            elif var.kind == "constant":
                L.append(f"    v_{name} = P[{name!r}]")
            elif var.kind == "lookup":
                continue
            elif var.kind == "stock" or var.initial is not None:
                # stock initial value, or the ACTIVE INITIAL value of an auxiliary
                L.append(f"    v_{name} = np.float64({_Codegen(name)(var.initial)})")
            else:
                L.append(f"    v_{name} = np.float64({_Codegen(name)(var.expr)})")
        # after initialisation an ACTIVE INITIAL auxiliary takes its equation's value; a static
        # one (constants only) and the static auxiliaries using it are set once more, here
        active = {n for n in aux_order if n not in dyn and ir.variables[n].initial is not None}
        for name in aux_order:
            if name in dyn:
                continue
            if name in active or _refs(ir.variables[name].expr) & active:
                active.add(name)
                L.append(f"    v_{name} = {_Codegen(name)(ir.variables[name].expr)}")
        hoist: dict = {}
        body = []
        for name in dyn_aux:
            body.append(f"        v_{name} = "
                        f"{_Codegen(name, hoist, dyn)(ir.variables[name].expr)}")
        flows = []
        for name in stocks:
            flows.append(f"        d_{name} = "
                         f"{_Codegen(name, hoist, dyn)(ir.variables[name].expr)}")
        for node, hname in hoist.items():
            L.append(f"    {hname} = {_Codegen(hname)(node)}")
        L.append("    j = 0")
        L.append("    last = len(times) - 1")
        L.append("    while True:")
        for name in sorted(ts_names):
            L.append(f"        v_{name} = TS[{name!r}][k]")
        L.extend(body)
        L.append("        if save[k]:")
        if outputs:
            for i, name in enumerate(outputs):
                L.append(f"            O[{i}][j] = v_{name}")
        L.append("            j += 1")
        L.append("        if k == last:")
        L.append("            break")
        L.extend(flows)
        for name in stocks:
            if getattr(ir.variables[name], "discrete", False):  # DELAY FIXED pipe etc.
                L.append(f"        v_{name} = d_{name}")
            elif getattr(ir.variables[name], "non_negative", False):  # PySD's NonNegativeInteg
                L.append(f"        v_{name} = np.maximum(v_{name} + d_{name} * dt, 0.0)")
            else:
                L.append(f"        v_{name} = v_{name} + d_{name} * dt")
        L.append("        k += 1")
        L.append("        t = times[k]")
        L.append("    return j")
        source = "\n".join(L) + "\n"
        env = dict(_RUNTIME)
        env["LOOKUPS"] = self._lookups
        code = compile(source, f"<aicarousel.ensemble {self.model_hash[:12]}>", "exec")
        exec(code, env)  # noqa: S102 - source generated from the IR
        return _Program(source, env["simulate"], outputs)

    # -- running -------------------------------------------------------------------------------
    def _normalise_params(self, params: Mapping[str, Any] | None, n: int | None,
                          times: np.ndarray):
        """Split overrides into per-run constants and time series; infer N."""
        import pandas as pd

        consts: dict[str, Any] = {}
        series: dict[str, np.ndarray] = {}
        n_found = None
        for name, value in self._element_params(params):
            key = self.py_name(name, kinds={"constant"}, what="parameter")
            real = self.real_name(key)
            if key in getattr(self.ir, "structural", {}):
                raise ParameterValueError(
                    f"parameter {real!r} fixes {self.ir.structural[key]} when the model is "
                    "built, so it cannot vary between runs; change it in the model file")
            if isinstance(value, pd.Series):
                idx = np.asarray(value.index, dtype=float)
                vals = np.asarray(value.values, dtype=float)
                if idx.size == 0 or np.any(np.diff(idx) <= 0) or not np.all(np.isfinite(vals)):
                    raise ParameterValueError(
                        f"time series for {real!r} needs a strictly increasing time index and "
                        "finite values")
                series[key] = np.interp(times, idx, vals)
                continue
            if isinstance(value, pd.DataFrame):
                # one column per run, index = time
                idx = np.asarray(value.index, dtype=float)
                vals = np.asarray(value.values, dtype=float)
                arr = np.empty((times.size, vals.shape[1]))
                for r in range(vals.shape[1]):
                    arr[:, r] = np.interp(times, idx, vals[:, r])
                series[key] = arr
                m = vals.shape[1]
            else:
                arr = np.asarray(value, dtype=float)
                if arr.ndim == 0:
                    if not np.isfinite(arr):
                        raise ParameterValueError(f"parameter {real!r} must be finite, got {value}")
                    consts[key] = float(arr)
                    continue
                if arr.ndim != 1:
                    raise ParameterValueError(
                        f"parameter {real!r}: give a scalar, a 1-d array of per-run values, a "
                        "pandas Series indexed by time or a DataFrame (time x runs)")
                if not np.all(np.isfinite(arr)):
                    raise ParameterValueError(f"parameter {real!r} has non-finite values")
                consts[key] = arr
                m = arr.shape[0]
            if n_found is not None and m != n_found:
                raise ParameterValueError(
                    f"parameter {real!r} has {m} runs but another parameter has {n_found}; all "
                    "per-run arrays must have the same length")
            n_found = m
        if n is None:
            n = n_found if n_found is not None else 1
        elif n_found is not None and n_found != n:
            raise ParameterValueError(f"n={n} but the per-run parameter arrays have {n_found} runs")
        if n < 1:
            raise ParameterValueError(f"number of runs must be >= 1, got {n}")
        return consts, series, n

    def _element_params(self, params):
        """Overrides with those of subscripted variables split into one per element."""
        arrays = getattr(self.ir, "arrays", None)
        for name, value in (params or {}).items():
            info = self.ir.array_info(name) if arrays else None
            if info is None:
                yield name, value
            else:
                from .subscripts import element_values
                yield from element_values(info, value).items()

    def _resolve_outputs(self, outputs: Sequence[str] | None) -> tuple[str, ...]:
        if outputs is None:
            return tuple(n for n, v in self.ir.variables.items()
                         if not v.internal and v.kind != "lookup")
        if isinstance(outputs, str):
            outputs = [outputs]
        keys = []
        for o in outputs:
            info = self.ir.array_info(o) if getattr(self.ir, "arrays", None) else None
            if info is not None:  # a subscripted variable: all its elements
                keys.extend(info.elements.values())
            else:
                keys.append(self.py_name(o, what="output"))
        for k in keys:
            if self.ir.variables[k].kind == "lookup":
                raise UnknownParameterError(
                    f"output {self.real_name(k)!r} is a lookup table, not a variable")
        return tuple(dict.fromkeys(keys))

    def run_arrays(self, params: Mapping[str, Any] | None = None, *, n: int | None = None,
                   outputs: Sequence[str] | None = None, final_time: float | None = None,
                   time_step: float | None = None, saveper: float | None = None,
                   chunk_size: int = DEFAULT_CHUNK, progress: bool = False,
                   processes: int | None = None, allow_nonfinite: bool = False,
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run N simulations and return plain arrays.

        A NaN or inf output raises SimulationError naming variable, run and time, unless
        ``allow_nonfinite`` (diagnostics such as ``aicarousel validate`` that report them).

        Parameters
        ----------
        params : mapping, optional
            Overrides by Vensim name: scalar (all runs), 1-d array of length N (per run),
            :class:`pandas.Series` indexed by time (all runs, interpolated like PySD) or
            :class:`pandas.DataFrame` (index time, one column per run).
        n : int, optional
            Number of runs; inferred from per-run arrays, else 1.
        outputs : sequence of str, optional
            Vensim names to keep (default: every model variable).
        final_time, time_step, saveper : float, optional
            Override the model's control values (years).
        chunk_size : int
            Runs evaluated together.
        progress : bool
            Show a tqdm bar over chunks.
        processes : int, optional
            Split the runs over this many forked processes (POSIX only; results land in
            shared memory, no pickling). Default 1. Results are identical to one process.

        Returns
        -------
        times : numpy.ndarray
            Saved times (years), shape (T,).
        values : dict of str to numpy.ndarray
            By py_name, shape (N, T).
        """
        from .params import facts_from_ir, validate  # the one validator of every entry point
        clean, _ = validate(params, facts_from_ir(self.ir), {"final_time": final_time,
                            "time_step": time_step, "saveper": saveper}, per_run=True,
                            kinds=("constant",))
        if params:  # by the validator's canonical names (whole arrays and elements included)
            from .params import CONTROL_NAMES
            params = {**clean, **{k: v for k, v in params.items()
                                  if isinstance(k, str) and k.strip().upper() in CONTROL_NAMES}}
        tspec = self.ir.time
        dt = float(time_step if time_step is not None else tspec.dt)
        final = float(final_time if final_time is not None else tspec.final)
        sp = float(saveper if saveper is not None else tspec.saveper)
        times, save = time_grid(float(tspec.initial), final, dt, sp)
        consts, series, n = self._normalise_params(params, n, times)
        outs = self._resolve_outputs(outputs)
        prog = self._program(frozenset(series), outs)
        n_saved = int(save.sum())
        base = dict(self.defaults)
        base.update({k: v for k, v in consts.items() if np.ndim(v) == 0})
        for ctrl, value in (("time_step", dt), ("final_time", final), ("saveper", sp)):
            if ctrl in base:  # control variables as the run uses them (as PySD reports them)
                base[ctrl] = value
        per_run = {k: v for k, v in consts.items() if np.ndim(v) == 1}
        procs = max(1, int(processes or 1)) if hasattr(os, "fork") else 1
        size = max(1, int(chunk_size))
        if procs > 1:  # equal shares: each process gets the same number of similar chunks
            per_proc = max(1, round(n / (procs * size)))
            size = max(1, -(-n // (procs * per_proc)))
        chunks = [(s, min(n, s + size)) for s in range(0, n, size)]
        procs = min(procs, len(chunks))

        def do_chunk(s, e, dest):
            m = e - s
            # numpy scalars, never Python floats: a division by an exact zero then gives
            # inf/nan (as in an N > 1 run and in PySD's numpy scalars), not ZeroDivisionError
            P = {k: np.float64(v) for k, v in base.items()}
            for k, v in per_run.items():
                P[k] = v[s:e]
            TS = {k: (v[:, s:e] if v.ndim == 2 else v) for k, v in series.items()}
            O = [np.empty((n_saved, m)) for _ in outs]
            with np.errstate(all="ignore"):
                prog.func(P, TS, times, save, m, dt, O)
            if not allow_nonfinite:
                _check_finite(outs, O, times[save], s, self.ir)
            for o, block in zip(outs, O):
                dest[o][s:e] = block.T

        if procs > 1:
            result = _run_forked(chunks, procs, do_chunk, outs, n, n_saved)
        else:
            result = {o: np.empty((n, n_saved)) for o in outs}
            it = chunks
            if progress:
                from tqdm.auto import tqdm
                it = tqdm(chunks, desc="ensemble", unit="chunk")
            for s, e in it:
                do_chunk(s, e, result)
        return times[save], result

    def run(self, params: Mapping[str, Any] | None = None, *, n: int | None = None,
            outputs: Sequence[str] | None = None, final_time: float | None = None,
            time_step: float | None = None, saveper: float | None = None,
            chunk_size: int = DEFAULT_CHUNK, progress: bool = False,
            processes: int | None = None):
        """Run N simulations; return an :class:`xarray.Dataset` with dims (run, time).

        Parameters are those of :meth:`run_arrays`. Each data variable is named by its Vensim
        name and carries attrs ``units``, ``description`` and ``py_name``; the Dataset attrs
        hold ``model_hash`` and ``engine``. A subscripted variable is one data variable with
        dims ``(run, time, <its subscript ranges>)``, as PySD returns it (NaN where an element
        has no equation).

        Returns
        -------
        xarray.Dataset
            Dims ``run`` (0..N-1) and ``time`` (years), plus subscript ranges.
        """
        import xarray as xr

        t, vals = self.run_arrays(params, n=n, outputs=outputs, final_time=final_time,
                                  time_step=time_step, saveper=saveper, chunk_size=chunk_size,
                                  progress=progress, processes=processes)
        n_runs = next(iter(vals.values())).shape[0] if vals else (n or 1)
        data = {}
        coords: dict[str, Any] = {"run": np.arange(n_runs), "time": t}
        arrays: dict[str, dict] = {}
        for k, arr in vals.items():
            var = self.ir.variables[k]
            if getattr(var, "array", None) is not None:
                arrays.setdefault(var.array[0], {})[var.array[1]] = arr
                continue
            data[var.real_name] = xr.Variable(
                ("run", "time"), arr,
                attrs={"units": var.units or "", "description": var.comment or "",
                       "py_name": k})
        for base, elems in arrays.items():
            info = self.ir.arrays[base]
            block = np.full((n_runs, t.size) + info.shape, np.nan)
            for tup, arr in elems.items():
                block[(slice(None), slice(None))
                      + tuple(c.index(e) for c, e in zip(info.coords, tup))] = arr
            for d, c in zip(info.dims, info.coords):
                if d in coords and list(coords[d]) != list(c):
                    raise UnsupportedFeatureError(
                        f"subscript range {d!r} has different elements in two variables; "
                        "ask for them in separate runs")
                coords[d] = list(c)
            first = self.ir.variables[next(iter(info.elements.values()))]
            data[info.real_name] = xr.Variable(
                ("run", "time") + tuple(info.dims), block,
                attrs={"units": first.units or "", "description": first.comment or "",
                       "py_name": base})
        return xr.Dataset(data, coords=coords,
                          attrs={"model_hash": self.model_hash, "engine": "aicarousel.ensemble"})


def _check_finite(outs, blocks, saved_times, first_run, ir) -> None:
    """Refuse NaN/inf in a chunk's outputs by the rule of every engine (``ir.nonfinite_error``:
    variable, time and run named)."""
    if all(np.isfinite(b).all() for b in blocks):
        return
    from .ir import nonfinite_error
    raise nonfinite_error(ir, saved_times, {o: b.T for o, b in zip(outs, blocks)}, first_run)


def _run_forked(chunks, procs, do_chunk, outs, n, n_saved):
    """Run chunks in ``procs`` forked children writing into shared anonymous memory."""
    import mmap

    from .errors import SimulationError

    count = n * n_saved
    bufs = {o: mmap.mmap(-1, max(8, count * 8)) for o in outs}
    views = {o: np.frombuffer(bufs[o], dtype=float, count=count).reshape(n, n_saved)
             for o in outs}
    children = []
    for w in range(procs):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: run its share, report failure through the pipe, never return
            os.close(rfd)
            code = 0
            try:
                for s, e in chunks[w::procs]:
                    do_chunk(s, e, views)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                os.write(wfd, f"{type(exc).__name__}: {exc}".encode()[:4000])
                code = 1
            finally:
                os._exit(code)
        os.close(wfd)
        children.append((pid, rfd))
    errors = []
    for pid, rfd in children:
        with os.fdopen(rfd, "rb") as fh:
            msg = fh.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        if status != 0:
            errors.append(msg or f"worker process ended with status {status}")
    if errors:
        raise SimulationError("ensemble run failed in a worker process: " + errors[0])
    return views


_CACHE: dict[str, CompiledModel] = {}
_CACHE_LOCK = threading.Lock()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def compile_model(model_file: str | Path | None = None) -> CompiledModel:
    """Parse (via the shared IR) and compile a model; cached in-process by file hash.

    Parameters
    ----------
    model_file : str or Path, optional
        Vensim .mdl or XMILE file; default the carousel model.

    Returns
    -------
    CompiledModel
    """
    from . import paths
    from .errors import ModelFileError
    from .ir import build_ir

    path = Path(model_file) if model_file is not None else paths.MODEL_FILE
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} not found; give an existing .mdl/.xmile")
    h = _file_hash(path)
    with _CACHE_LOCK:
        cm = _CACHE.get(h)
    if cm is None:
        cm = CompiledModel(_cached_ir(path, h, build_ir))
        with _CACHE_LOCK:
            _CACHE[h] = cm
    return cm


def _cached_ir(path: Path, model_hash: str, build_ir):
    """The IR of ``path``, pickled in the cache directory keyed by the model file's hash and
    the IR code's hash (parsing takes about a second; loading the pickle a few ms, which
    matters for every dask worker and CLI call). The pickle is unpickled only after its HMAC
    tag verified (:func:`aicarousel.cache.read_verified`): a planted pickle is never loaded."""
    import pickle

    from . import cache
    from . import ir as ir_module
    from . import subscripts as subscripts_module

    import pysd  # a locked dependency: always there
    pysd_version = pysd.__version__
    code = hashlib.sha256(Path(ir_module.__file__).read_bytes()
                          + Path(subscripts_module.__file__).read_bytes()
                          + pysd_version.encode()).hexdigest()[:16]
    context = cache.context_string(kind="ir", model_sha256=model_hash, ir_code=code)
    try:
        target = cache.private_dir("ensemble") / f"{model_hash[:16]}-{code}.ir.pkl"
    except OSError:
        target = None
    data = cache.read_verified(target, context) if target and target.exists() else None
    if data is not None:
        ir = pickle.loads(data)  # verified: written by this user's aicarousel for this model
        if getattr(ir, "sha256", None) == model_hash:
            return ir
    ir = build_ir(path)
    if target is not None:
        try:
            cache.write_signed(target, pickle.dumps(ir, protocol=pickle.HIGHEST_PROTOCOL), context)
        except OSError:  # read-only cache: just do without
            pass
    return ir

