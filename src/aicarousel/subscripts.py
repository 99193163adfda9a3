"""Subscripted (arrayed) models in the IR: every array is expanded into scalar elements.

PySD keeps a subscripted variable as one ``xarray.DataArray``; the IR instead gives each
element its own scalar :class:`aicarousel.ir.Variable` (py_name ``<var>__<elem>[__<elem>]``,
real name ``Var[e1,e2]`` as Vensim writes it in its output) and records how to put them back
together in ``ModelIR.arrays``. Every engine that handles scalars (the reference evaluator,
the ensemble, the sympy system) then handles arrays with no new code; only the outputs are
reassembled into their dimensions (:meth:`ArrayInfo.grid`).

Building follows PySD's semantics for subscripts (``pysd.builders.python``): the subscript
ranges come from PySD's own :class:`SubscriptManager` (ranges, subranges, copied ranges,
mappings); each equation's right-hand side is evaluated to an array of scalar expressions with
named dimensions (a tiny object-array version of xarray's broadcasting by dimension name), and
each element on the left takes the entry at its coordinates:

* a reference ``x[Dim]`` keeps ``x``'s axis under the name ``Dim`` (positionally when ``Dim``
  has as many elements as ``x``'s axis, by element name when it is a subrange); ``x[elem]``
  drops the axis; ``x[Dim!]`` names an axis a vector function reduces;
* a reference's range that the left side lacks is relabelled to the range it maps to
  (``DimA: a1, a2 -> DimB``), element by position, as PySD does;
* EXCEPT removes elements from an equation; an array variable may be defined by several
  equations (element by element, subranges);
* constants written as tables, subscripted lookups, stocks, flows, SMOOTH/DELAY/TREND/INITIAL
  (one chain of internal stocks per element), ACTIVE INITIAL;
* SUM, PROD, VMIN, VMAX (sums in numpy's pairwise order, as PySD's xarray sums), ELMCOUNT,
  VECTOR SELECT with a constant selection array, VECTOR SORT ORDER / VECTOR RANK / VECTOR
  REORDER with a constant direction (written with comparisons, so the vector may vary);
* GET (DIRECT) CONSTANTS and GET (DIRECT) DATA, read once at build time with PySD's own
  spreadsheet reader (data become lookups of Time; RAW / LOOK FORWARD / HOLD BACKWARD only
  when every integration time is a data time). The IR cache is keyed by the model file:
  rebuild after editing the spreadsheet.

Refused with :class:`aicarousel.errors.UnsupportedFeatureError` (naming the variable and the
feature): VECTOR ELM MAP, VECTOR SELECT with a selection that varies, a sort direction that
varies, mappings to element lists, subscript ranges read from files, other data variables,
and a right-hand side with a range the left side lacks (other than by a
mapping).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass

import numpy as np

from aicarousel.errors import ModelFileError, UnsupportedFeatureError

__all__ = ["ArrayInfo", "build_subscripted", "element_values"]


@dataclass(frozen=True)
class ArrayInfo:
    """How the scalar elements of one subscripted variable form its array.

    Attributes
    ----------
    name, real_name : str
        PySD's py_name and the model-file name of the array variable.
    dims : tuple of str
        Subscript range of each axis (PySD's final dimension names).
    coords : tuple of tuple of str
        Elements of each axis.
    elements : dict
        ``coords tuple -> element py_name`` for every defined element.
    """

    name: str
    real_name: str
    dims: tuple
    coords: tuple
    elements: dict

    @property
    def shape(self) -> tuple:
        return tuple(len(c) for c in self.coords)

    def grid(self) -> np.ndarray:
        """Object array (shape ``self.shape``) of element py_names (None where undefined)."""
        out = np.empty(self.shape, dtype=object)
        for idx in np.ndindex(*self.shape):
            out[idx] = self.elements.get(tuple(c[i] for c, i in zip(self.coords, idx)))
        return out


def element_values(info: ArrayInfo, value, *, per_run: bool = True) -> dict:
    """Split an override of a subscripted variable into one value per element.

    Parameters
    ----------
    info : ArrayInfo
    value : number, callable, pandas Series, numpy array or xarray.DataArray
        A number, a callable of time or a time Series applies to every element. An array of
        shape ``info.shape`` gives one value per element; with ``per_run`` an array of shape
        ``(N,) + info.shape`` gives N per-run values per element. A DataArray is matched by
        dimension name and element (``run`` as its optional per-run dimension); dimensions
        it lacks are broadcast.

    Returns
    -------
    dict
        ``element py_name -> value`` (a number, or a 1-d array of N per-run values).
    """
    from aicarousel.errors import ParameterValueError

    elems = info.elements
    if hasattr(value, "dims") and hasattr(value, "sel"):  # xarray.DataArray
        extra = set(value.dims) - set(info.dims) - ({"run"} if per_run else set())
        if extra:
            raise ParameterValueError(
                f"values for {info.real_name!r} have dimension(s) {sorted(extra)}, which it "
                f"lacks; its dimensions are {list(info.dims)}" + (" (plus 'run')"
                                                                  if per_run else ""))
        out = {}
        for t, name in elems.items():
            sel = {d: e for d, e in zip(info.dims, t) if d in value.dims}
            try:
                v = value.sel(sel)
            except KeyError as exc:
                raise ParameterValueError(f"values for {info.real_name!r} lack element "
                                          f"{exc.args[0]!r}") from None
            out[name] = float(v) if v.ndim == 0 else np.asarray(v.values, float)
        return out
    if (callable(value) or np.ndim(value) == 0  # (a list has .index too: not a time series)
            or (hasattr(value, "index") and not isinstance(value, (list, tuple, np.ndarray)))):
        return {name: value for name in elems.values()}
    arr = np.asarray(value, dtype=float)
    shape = info.shape
    if arr.shape == shape:
        return {name: float(arr[tuple(c.index(e) for c, e in zip(info.coords, t))])
                for t, name in elems.items()}
    if per_run and arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        return {name: arr[(slice(None),) + tuple(c.index(e) for c, e in zip(info.coords, t))]
                for t, name in elems.items()}
    want = f"{shape}" + (f" or (runs,) + {shape}" if per_run else "")
    raise ParameterValueError(
        f"values for {info.real_name!r} have shape {arr.shape}; give a number, an array of "
        f"shape {want} (dims {list(info.dims)}) or an xarray.DataArray")


def _pairwise_sum(items: list):
    """IR sum of ``items`` in the order of numpy's pairwise summation (``np.add.reduce`` on
    a contiguous axis): sequential below 8 items, eight interleaved partial sums up to 128,
    halves above."""
    from aicarousel.ir import Op

    def add(a, b):
        return Op("+", (a, b))

    n = len(items)
    if n < 8:
        acc = items[0]
        for x in items[1:]:
            acc = add(acc, x)
        return acc
    if n <= 128:
        r = list(items[:8])
        i = 8
        while i < n - n % 8:
            r = [add(r[j], items[i + j]) for j in range(8)]
            i += 8
        acc = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])))
        for x in items[i:]:
            acc = add(acc, x)
        return acc
    half = n // 2
    half -= half % 8
    return add(_pairwise_sum(items[:half]), _pairwise_sum(items[half:]))


class _Pre:
    """An already-built IR expression standing in a PySD AST (see ``_ArrayBuilder.expr``)."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = expr


class _A:
    """An array of IR expressions with named dimensions (dims, coords, object ndarray)."""

    __slots__ = ("dims", "coords", "data")

    def __init__(self, dims, coords, data):
        self.dims = tuple(dims)
        self.coords = tuple(tuple(c) for c in coords)
        self.data = data

    @staticmethod
    def scalar(e) -> "_A":
        d = np.empty((), dtype=object)
        d[()] = e
        return _A((), (), d)

    def item(self):
        return self.data[()]


def _clean(s: str) -> str:
    return re.sub(r"\W+", "_", str(s)).strip("_").lower() or "x"


def _is_ast_field(v) -> bool:
    return not isinstance(v, (str, list, dict, type(None)))


def build_subscripted(path, am):
    """Build the :class:`~aicarousel.ir.ModelIR` of a model with subscript ranges."""
    return _make_builder_class()(path, am).build()


_CLASS = None


def _make_builder_class():
    """The array builder subclasses the IR's scalar builder (imported lazily: no cycle)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from aicarousel import ir as IR

    class _ArrayBuilder(IR._Builder):
        def __init__(self, path, am) -> None:
            from pysd.builders.python.subscripts import SubscriptManager

            super().__init__(path, am)
            for r in self.section.subscripts:
                if isinstance(r.subscripts, dict):
                    self._current_real = r.name
                    raise self.unsupported("a subscript range read from a file")
                for m in r.mapping or []:
                    if not isinstance(m, str):
                        self._current_real = r.name
                        raise self.unsupported("a subscript mapping to a list of elements")
            try:
                self.sm = SubscriptManager(self.section.subscripts, path.parent)
            except Exception as exc:  # noqa: BLE001 - PySD's own message names the range
                raise ModelFileError(f"model {path.name}: bad subscript range: {exc}") from exc
            self.all_elements = {e for subs in self.sm.subscripts.values() for e in subs}
            self.arrays: dict[str, ArrayInfo] = {}
            self.lookup_arrays: set[str] = set()
            self._def_keys: list[str] = []
            self._elem_suffix = ""

        # -- unsupported features ---------------------------------------------------------
        def unsupported(self, what: str) -> UnsupportedFeatureError:
            return UnsupportedFeatureError(
                f"variable {self._current_real!r} in {self.path.name} uses {what}, which the "
                "model IR (symbolic analysis, ensemble engine) does not support; rewrite it "
                "with supported functions (see aicarousel.ir and aicarousel.subscripts) or "
                "use the plain PySD run")

        # -- element names ----------------------------------------------------------------
        def _element_name(self, base: str, coords: tuple) -> str:
            name = base + "".join("__" + _clean(c) for c in coords)
            cand, i = name, 1
            while cand in self._used or cand in self.ns.cleanspace.values():
                cand = f"{name}_{i}"
                i += 1
            self._used.add(cand)
            return cand

        def _lhs_tuples(self, comp) -> tuple[list, list]:
            """Def-subscript keys and element tuples an equation defines (EXCEPT removed)."""
            lhs = list(comp.subscripts[0])
            if not lhs:
                return [], [], [()]
            defs = self.sm.make_coord_dict(lhs)
            if len(defs) != len(lhs):
                raise self.unsupported("the same subscript range twice on the left-hand side")
            keys = list(defs)
            tuples = list(itertools.product(*defs.values()))
            for exc in comp.subscripts[1] or []:
                sets = [set(self.sm.subscripts[s]) if s in self.sm.subscripts
                        and s not in self.all_elements else {s} for s in exc]
                tuples = [t for t in tuples if not all(e in s for e, s in zip(t, sets))]
            return keys, list(defs.values()), tuples

        # -- main -------------------------------------------------------------------------
        def build(self):
            from pysd.translators.structures import abstract_expressions as ae
            from pysd.translators.structures import abstract_model as am_mod

            plan = []
            for el in self.section.elements:
                self._current_real = el.name
                py = self.ns.namespace[el.name]
                comps = el.components
                if any(isinstance(c, am_mod.AbstractData)
                       and type(c.ast).__name__ != "GetDataStructure" for c in comps):
                    raise self.unsupported("data variables")
                if all(not c.subscripts[0] for c in comps):
                    if len(comps) != 1:
                        raise self.unsupported("several equations for one variable")
                    plan.append((el, py, None, [(comps[0], ([], []), [((), py)])]))
                    if isinstance(comps[0].ast, ae.LookupsStructure):
                        self.lookup_names.add(py)
                    continue
                if any(not c.subscripts[0] for c in comps):
                    raise ModelFileError(f"variable {el.name!r} in {self.path.name} mixes "
                                         "subscripted and unsubscripted equations")
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dims = self.sm.make_merge_list([list(c.subscripts[0]) for c in comps],
                                                   el.name)
                coords = tuple(tuple(self.sm.subscripts[d]) for d in dims)
                elements: dict = {}
                parts = []
                for c in comps:
                    keys, defs, tuples = self._lhs_tuples(c)
                    names = []
                    for t in tuples:
                        if t in elements:
                            raise ModelFileError(
                                f"variable {el.name!r} in {self.path.name} defines element "
                                f"[{','.join(t)}] twice; remove one equation")
                        elements[t] = self._element_name(py, t)
                        names.append((t, elements[t]))
                    parts.append((c, (keys, defs), names))
                self.arrays[py] = ArrayInfo(py, el.name, tuple(dims), coords, elements)
                if any(isinstance(c.ast, ae.LookupsStructure) for c in comps):
                    self.lookup_arrays.add(py)
                    self.lookup_names.update(elements.values())
                plan.append((el, py, self.arrays[py], parts))
            # constants first (delay orders and VECTOR SELECT read them at build time)
            for el, py, info, parts in plan:
                for c, keys, names in parts:
                    self._current, self._current_real = py, el.name
                    if type(c.ast).__name__ == "GetConstantsStructure":
                        table = self._external_constants(c.ast, info, keys)
                    self._current_real = el.name
                    for i, (t, name) in enumerate(names):
                        if type(c.ast).__name__ == "GetConstantsStructure":
                            self.const_values[name] = table[t]
                            continue
                        v = self._constant_value(c.ast, keys, t)
                        if v is not None:
                            self.const_values[name] = v
            for el, py, info, parts in plan:
                for c, keys, names in parts:
                    self._add_component(el, py, info, c, keys, names)
            time = self._time_spec()
            ir = IR.ModelIR(path=self.path, sha256=IR._file_sha256(self.path), time=time,
                            variables=self.variables, internal_map=self.internal_map,
                            arrays=self.arrays)
            self._mark_structural(ir)
            for n, v in ir.variables.items():
                for r in IR.refs(v.expr) | IR.refs(v.initial):
                    if r not in ir.variables:
                        raise ModelFileError(
                            f"variable {v.real_name!r} in {self.path.name} refers to {r!r}, "
                            "which has no equation in the model")
            ir.order  # noqa: B018 -- detect algebraic loops now, with a clear message
            return ir

        def _external_constants(self, ast, info, keys) -> dict:
            """GET (DIRECT) CONSTANTS read once, with PySD's own reader, at build time:
            ``element tuple -> value``."""
            from pysd.py_backend.external import ExtConstant

            keys, defs = keys
            dims = info.dims if info is not None else ()
            coords = {d: list(c) for d, c in zip(dims, defs)}
            final = {d: list(c) for d, c in zip(dims, info.coords)} if info else {}
            try:
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ext = ExtConstant(ast.file, ast.tab, ast.cell, coords, self.path.parent,
                                      final, "_ext_" + self._current)
                    ext.initialize()
                    data = ext.data
            except Exception as exc:  # noqa: BLE001 - PySD's reader names file and cell
                raise ModelFileError(f"variable {self._current_real!r} in {self.path.name}: "
                                     f"cannot read GET CONSTANTS({ast.file!r}, {ast.tab!r}, "
                                     f"{ast.cell!r}): {exc}") from exc
            out = {}
            for t in itertools.product(*defs) if defs else [()]:
                v = data.sel({d: e for d, e in zip(dims, t)}) if dims else data
                out[t] = float(v)
            return out

        def _external_data(self, comp, info, keys) -> list:
            """GET (DIRECT) DATA read once with PySD's reader: ``(times, values)`` per
            element of the equation, evaluated as a lookup of Time. PySD interpolates
            linearly inside the data and holds its ends; with RAW / LOOK FORWARD / HOLD
            BACKWARD it differs between data times, so those are accepted only when every
            integration time is a data time."""
            from pysd.py_backend.external import ExtData

            ast = comp.ast
            keys, defs = keys
            dims = info.dims if info is not None else ()
            coords = {d: list(c) for d, c in zip(dims, defs)}
            final = {d: list(c) for d, c in zip(dims, info.coords)} if info else {}
            interp = comp.keyword or "interpolate"
            try:
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ext = ExtData(ast.file, ast.tab, ast.time_row_or_col, ast.cell, interp,
                                  coords, self.path.parent, final, "_ext_" + self._current)
                    ext.initialize()
                    data = ext.data
            except Exception as exc:  # noqa: BLE001 - PySD's reader names file and cell
                raise ModelFileError(f"variable {self._current_real!r} in {self.path.name}: "
                                     f"cannot read GET DATA({ast.file!r}, {ast.tab!r}, "
                                     f"{ast.cell!r}): {exc}") from exc
            xs = tuple(float(x) for x in data["time"].values)
            if any(b <= a for a, b in zip(xs, xs[1:])):
                raise self.unsupported("GET DATA with times that do not increase")
            if interp != "interpolate":
                cv = [self.const_values.get(n) for n in ("initial_time", "final_time",
                                                         "time_step")]
                if None in cv:
                    raise self.unsupported(f"GET DATA with {interp.upper()} interpolation "
                                           "and control variables that are not numbers")
                grid = np.arange(cv[0], cv[1] + cv[2] / 2, cv[2])
                if not all(np.any(np.abs(np.asarray(xs) - g) <= 1e-9 * max(1.0, abs(g)))
                           for g in grid):
                    raise self.unsupported(f"GET DATA with {interp.upper()} interpolation "
                                           "between data times")
            out = []
            for t in itertools.product(*defs) if defs else [()]:
                v = data.sel({d: e for d, e in zip(dims, t)}) if dims else data
                ys = tuple(float(y) for y in np.asarray(v.values, float).ravel())
                if any(np.isnan(ys)):
                    raise self.unsupported("GET DATA with missing values")
                out.append((xs, ys))
            return out

        def _constant_value(self, ast, keys, t):
            if isinstance(ast, np.ndarray):
                return float(self._table_entry(ast, keys, t))
            if isinstance(ast, (int, float, np.number)) and not isinstance(ast, bool):
                return float(ast)
            return None

        def _table_entry(self, ast, keys, t):
            keys, defs = keys
            shape = [len(d) for d in defs]
            arr = np.asarray(ast, dtype=float)
            if arr.size != int(np.prod(shape)):
                raise ModelFileError(
                    f"variable {self._current_real!r} in {self.path.name} gives {arr.size} "
                    f"numbers for {' x '.join(map(str, shape))} elements ({', '.join(keys)}); "
                    "give one number per element")
            arr = arr.reshape(shape)
            return arr[tuple(d.index(e) for d, e in zip(defs, t))]

        def _add_component(self, el, py, info, c, keys, names) -> None:
            from pysd.translators.structures import abstract_expressions as ae

            ast = c.ast
            self._current, self._current_real = py, el.name
            keys_defs, keys = keys, keys[0]
            self._def_keys = keys
            common = dict(units=el.units or "",
                          limits=tuple(el.limits) if el.limits else (None, None),
                          comment=(el.documentation or "").strip())

            def real(t):
                return f"{el.name}[{','.join(t)}]" if t else el.name

            def var(name, t, **kw):
                v = IR.Variable(name=name, real_name=real(t), **common, **kw)
                if info is not None:
                    v.array = (py, t)
                self.variables[name] = v
                return v

            if isinstance(ast, ae.LookupsStructure):
                for t, name in names:
                    self._current_real = real(t)
                    var(name, t, kind="lookup", table=self._table(ast))
                return
            if isinstance(ast, (np.ndarray, ae.GetConstantsStructure)) or (
                    isinstance(ast, (int, float, np.number)) and not isinstance(ast, bool)):
                for t, name in names:
                    var(name, t, kind="constant", expr=IR.Num(self.const_values[name]))
                return
            if isinstance(ast, ae.GetDataStructure):
                for (t, name), (xs, ys) in zip(names, self._external_data(c, info, keys_defs)):
                    table = self._element_name("_data_" + name, ())
                    self.variables[table] = IR.Variable(
                        name=table, real_name=f"{real(t)} (GET DATA table)", kind="lookup",
                        table=(xs, ys), internal=True)
                    var(name, t, kind="aux", expr=IR.Lookup(table, IR.Time()))
                return
            if isinstance(ast, ae.IntegStructure):
                for t, name in names:  # declare first: flows may refer to the stock
                    var(name, t, kind="stock", non_negative=bool(ast.non_negative))
                flow = self.arr(ast.flow)
                init = self.arr(ast.initial)
                for t, name in names:
                    self.variables[name].expr = self._pick(flow, keys, t)
                    self.variables[name].initial = self._pick(init, keys, t)
                return
            if isinstance(ast, ae.CallStructure) and ast.function.reference == "active_initial":
                for t, name in names:
                    var(name, t, kind="aux")
                e = self.arr(ast.arguments[0])
                i = self.arr(ast.arguments[1])
                for t, name in names:
                    self.variables[name].expr = self._pick(e, keys, t)
                    self.variables[name].initial = self._pick(i, keys, t)
                return
            for t, name in names:
                var(name, t, kind="aux")
            e = self.arr(ast)
            for t, name in names:
                self.variables[name].expr = self._pick(e, keys, t)

        def _pick(self, a: _A, keys, t):
            """The entry of ``a`` for the left-hand-side element tuple ``t``."""
            idx = []
            for dim, coords in zip(a.dims, a.coords):
                if dim not in keys:
                    raise self.unsupported(
                        f"the subscript {dim.rstrip('!')!r} on the right-hand side, which the "
                        "left-hand side lacks (reduce it with SUM, VMIN, ...)")
                e = t[keys.index(dim)]
                if e in coords:
                    idx.append(coords.index(e))
                else:
                    raise self.unsupported(
                        f"the element {e!r}, which the right-hand side's range {dim!r} lacks")
            return a.data[tuple(idx)]

        # -- static values ----------------------------------------------------------------
        def static_value(self, expr) -> float:
            names = IR.refs(expr)
            if names and names <= set(self.const_values):
                return float(IR.eval_expr(expr, self.const_values, None, t=float("nan"),
                                          dt=float("nan")))
            return super().static_value(expr)

        def _const(self, expr, what: str) -> float:
            """Value of an expression of numbers and constants, else refuse naming ``what``."""
            names = IR.refs(expr)
            if any(isinstance(e, IR.Time) for e in IR.walk(expr)) or not names <= set(
                    self.const_values):
                raise self.unsupported(f"{what} that varies")
            return float(IR.eval_expr(expr, self.const_values, None, t=float("nan"),
                                      dt=float("nan")))

        # -- expressions ------------------------------------------------------------------
        def expr(self, ast):
            if isinstance(ast, _Pre):
                return ast.expr
            a = self.arr(ast)
            if a.dims:
                raise self.unsupported(f"an array ({', '.join(a.dims)}) where a single "
                                       "value is needed")
            return a.item()

        def broadcast(self, arrays: list[_A]) -> tuple[tuple, tuple, list]:
            dims, coords = [], []
            for a in arrays:
                for d, c in zip(a.dims, a.coords):
                    if d in dims:
                        if coords[dims.index(d)] != c:
                            raise self.unsupported(
                                f"arrays over different elements of {d!r} in one expression")
                    else:
                        dims.append(d)
                        coords.append(c)
            shape = tuple(len(c) for c in coords)
            out = []
            for a in arrays:
                data = a.data
                if a.dims:
                    order = sorted(range(len(a.dims)), key=lambda i: dims.index(a.dims[i]))
                    data = np.transpose(data, order)
                    present = [d for d in dims if d in a.dims]
                    newshape = [len(coords[dims.index(d)]) if d in present else 1
                                for d in dims]
                    data = data.reshape(newshape)
                out.append(np.broadcast_to(data, shape))
            return tuple(dims), tuple(coords), out

        def elementwise(self, arrays: list[_A], fn) -> _A:
            dims, coords, datas = self.broadcast(arrays)
            shape = tuple(len(c) for c in coords)
            out = np.empty(shape, dtype=object)
            base = self._elem_suffix
            for idx in np.ndindex(*shape):
                if shape:
                    self._elem_suffix = base + "".join(
                        "__" + _clean(c[i]) for c, i in zip(coords, idx))
                out[idx] = fn(*[d[idx] for d in datas])
            self._elem_suffix = base
            return _A(dims, coords, out)

        def new_internal_name(self, prefix: str) -> str:
            saved = self._current
            self._current = saved + self._elem_suffix
            try:
                return super().new_internal_name(prefix)
            finally:
                self._current = saved

        def arr(self, ast) -> _A:
            from pysd.translators.structures import abstract_expressions as ae

            if isinstance(ast, _Pre):
                return _A.scalar(ast.expr)
            if isinstance(ast, (bool, int, float, np.number)):
                return _A.scalar(IR._Builder.expr(self, ast))
            if isinstance(ast, ae.ReferenceStructure):
                return self._reference(ast)
            if isinstance(ast, (ae.ArithmeticStructure, ae.LogicStructure)):
                args = [self.arr(a) for a in ast.arguments]
                return self.elementwise(args, lambda *xs: self._operation(
                    dataclasses.replace(ast, arguments=tuple(_Pre(x) for x in xs))))
            if isinstance(ast, ae.CallStructure):
                return self._array_call(ast)
            if isinstance(ast, np.ndarray):
                raise self.unsupported("a table of numbers inside an expression")
            if dataclasses.is_dataclass(ast) and not any(
                    isinstance(getattr(ast, f.name), (tuple, list))
                    for f in dataclasses.fields(ast)):
                # stateful functions and inline lookups: one scalar structure per element
                fields = [f.name for f in dataclasses.fields(ast)
                          if _is_ast_field(getattr(ast, f.name))
                          and not isinstance(getattr(ast, f.name), ae.LookupsStructure)]
                args = [self.arr(getattr(ast, f)) for f in fields]
                return self.elementwise(args, lambda *xs: IR._Builder.expr(
                    self, dataclasses.replace(ast, **{f: _Pre(x) for f, x in zip(fields, xs)})))
            return _A.scalar(IR._Builder.expr(self, ast))

        # -- references -------------------------------------------------------------------
        def _subscript_number(self, name: str) -> _A:
            """A subscript range or element used as a value: positions from 1 (PySD)."""
            sm = self.sm
            for rng, subs in sm.subscripts.items():
                if rng.replace(" ", "_").lower() == name:
                    main = next((m for m, subr in sm.subranges.items()
                                 if m == rng or rng in subr), rng)
                    vals = [sm.subscripts[main].index(e) + 1 for e in subs]
                    data = np.array([IR.Num(float(v)) for v in vals] + [None],
                                    dtype=object)[:-1]
                    return _A((rng,), (tuple(subs),), data)
            for main in sm.subranges:
                for i, e in enumerate(sm.subscripts[main], start=1):
                    if e.replace(" ", "_").lower() == name:
                        return _A.scalar(IR.Num(float(i)))
            raise ModelFileError(f"variable {self._current_real!r} in {self.path.name} refers "
                                 f"to {name!r}, which the model does not define")

        def _reference(self, ast) -> _A:
            if ast.reference == "time":
                return _A.scalar(IR.Time())
            if ast.reference in self._scope and not ast.subscripts:  # inside a macro
                return _A.scalar(IR._Builder.expr(self, ast))
            if ast.reference not in self.ns.cleanspace:
                return self._subscript_number(ast.reference)
            name = self.py(ast.reference)
            if name in self.lookup_names or name in self.lookup_arrays:
                raise self.unsupported(f"the lookup {ast.reference!r} without an argument")
            return self._array_of(name, ast.subscripts, lambda n: IR.Ref(n))

        def _array_of(self, name, subscripts, make) -> _A:
            info = self.arrays.get(name)
            subs = list(getattr(subscripts, "subscripts", None) or [])
            if info is None:
                if subs:
                    raise ModelFileError(f"variable {self._current_real!r} in "
                                         f"{self.path.name} subscripts {name!r}, which has no "
                                         "subscripts")
                return _A.scalar(make(name))
            grid = info.grid()
            data = np.empty(grid.shape, dtype=object)
            for idx in np.ndindex(*grid.shape):
                data[idx] = make(grid[idx]) if grid[idx] is not None else None
            if not subs:
                return _A(info.dims, info.coords, data)
            if len(subs) != len(info.dims):
                raise ModelFileError(f"variable {self._current_real!r} in {self.path.name} "
                                     f"gives {len(subs)} subscripts to {info.real_name!r}, "
                                     f"which has {len(info.dims)}")
            dims, coords, index = [], [], []
            for s, odim, ocoords in zip(subs, info.dims, info.coords):
                if s in self.all_elements and s not in self.sm.subscripts:
                    if s not in ocoords:
                        raise ModelFileError(f"variable {self._current_real!r} in "
                                             f"{self.path.name} uses element {s!r} of "
                                             f"{info.real_name!r}, which has no such element")
                    index.append(ocoords.index(s))
                    continue
                rng = s[:-1] if s.endswith("!") else s
                if rng not in self.sm.subscripts:
                    raise ModelFileError(f"variable {self._current_real!r} in "
                                         f"{self.path.name}: unknown subscript {s!r}")
                c = tuple(self.sm.subscripts[rng])
                if len(c) == len(ocoords):
                    sel = list(range(len(ocoords)))  # PySD: the whole axis, by position
                elif set(c) <= set(ocoords):
                    sel = [ocoords.index(e) for e in c]
                else:
                    raise self.unsupported(f"the range {s!r} on {info.real_name!r}'s axis "
                                           f"{odim!r}, which lacks some of its elements")
                if len(sel) == 1:  # PySD drops length-1 selections
                    index.append(sel[0])
                    continue
                index.append(sel)
                dims.append(s)
                coords.append(c)
            # numpy fancy indexing, one axis at a time (keeps axis order)
            out = data
            axis = 0
            for ix in index:
                if isinstance(ix, list):
                    out = np.take(out, ix, axis=axis)
                    axis += 1
                else:
                    out = np.take(out, ix, axis=axis)
            if not isinstance(out, np.ndarray):
                out = _A.scalar(out).data
            # mappings: a range the left side lacks is relabelled to the one it maps to
            for i, d in enumerate(dims):
                if d.endswith("!") or d in self._def_keys:
                    continue
                for mapped in self.sm.mapping.get(d, []):
                    if mapped in self._def_keys and mapped not in dims:
                        mc = tuple(self.sm.subscripts[mapped])
                        if len(mc) != len(coords[i]):
                            raise self.unsupported(f"a mapping of {d!r} to {mapped!r} with "
                                                   "a different number of elements")
                        dims[i], coords[i] = mapped, mc
                        break
            if any(x is None for x in np.ravel(out)):
                raise ModelFileError(f"variable {self._current_real!r} in {self.path.name} "
                                     f"uses elements of {info.real_name!r} that have no "
                                     "equation")
            return _A(dims, coords, out)

        # -- calls ------------------------------------------------------------------------
        def _array_call(self, ast) -> _A:
            fname = ast.function.reference
            py = self.ns.cleanspace.get(fname)
            if py is not None and (py in self.lookup_arrays or py in self.lookup_names):
                if len(ast.arguments) != 1:
                    raise self.unsupported(f"the lookup {fname!r} with {len(ast.arguments)} "
                                           "arguments")
                tables = self._array_of(py, ast.function.subscripts, lambda n: n)
                x = self.arr(ast.arguments[0])
                return self.elementwise([tables, x], lambda tb, xx: IR.Lookup(tb, xx))
            if fname in ("sum", "prod", "vmin", "vmax", "vmin_xmile", "vmax_xmile"):
                return self._reduce(fname, self.arr(ast.arguments[0]))
            if fname == "elmcount":
                a = ast.arguments[0]
                rng = getattr(a, "reference", a)
                for r, subs in self.sm.subscripts.items():
                    if r == rng or r.replace(" ", "_").lower() == rng:
                        return _A.scalar(IR.Num(float(len(subs))))
                raise self.unsupported(f"ELMCOUNT of {rng!r}")
            if fname == "vector_select":
                return self._vector_select(ast)
            if fname in ("vector_sort_order", "vector_rank", "vector_reorder"):
                return self._vector_order(fname, ast)
            if fname.startswith("vector_") or fname in ("invert_matrix",):
                raise self.unsupported(f"the function {fname.upper().replace('_', ' ')} on "
                                       "arrays")
            if fname == "active_initial":
                raise self.unsupported("ACTIVE INITIAL inside an expression")
            args = [self.arr(a) for a in ast.arguments]
            return self.elementwise(args, lambda *xs: self._call(
                dataclasses.replace(ast, arguments=tuple(_Pre(x) for x in xs))))

        def _reduce(self, fname: str, a: _A, axes=None) -> _A:
            if axes is None:
                if fname.endswith("_xmile"):
                    axes = list(range(len(a.dims)))
                else:
                    axes = [i for i, d in enumerate(a.dims) if d.endswith("!")]
            if not axes:
                return a
            return self._reduce_axes(fname.replace("_xmile", ""), a.dims, a.coords, a.data,
                                     axes)

        def _reduce_axes(self, f: str, dims, coords, data, axes) -> _A:
            """Reduce ``data`` over ``axes`` in numpy's order of operations (PySD reduces with
            xarray/numpy): when the last axis is reduced, pairwise sums along it, then the
            rows in order; otherwise element by element in row-major order."""
            keep = [i for i in range(len(dims)) if i not in axes]
            inner = len(dims) - 1 in axes and f == "sum"
            data = np.transpose(data, keep + axes)
            kshape = tuple(data.shape[:len(keep)])
            row = data.shape[-1] if inner else 1
            data = data.reshape(kshape + (-1, row))
            out = np.empty(kshape, dtype=object)
            for idx in np.ndindex(*kshape):
                rows = [_pairwise_sum(list(r)) if inner else r[0] for r in data[idx]]
                out[idx] = self._fold(f, rows)
            return _A([dims[i] for i in keep], [coords[i] for i in keep], out)

        @staticmethod
        def _fold(f: str, items: list):
            acc = items[0]
            for x in items[1:]:
                if f == "sum":
                    acc = IR.Op("+", (acc, x))
                elif f == "prod":
                    acc = IR.Op("*", (acc, x))
                else:
                    acc = IR.Call("min" if f == "vmin" else "max", (acc, x))
            return acc

        def _vector_select(self, ast) -> _A:
            sel_ast, expr_ast, miss, action, err = ast.arguments
            sel = self.arr(sel_ast)
            ex = self.arr(expr_ast)
            dims, coords, (sd, ed) = self.broadcast([sel, ex])
            sv = np.vectorize(lambda e: self._const(e, "VECTOR SELECT with a selection array"),
                              otypes=[float])(sd)
            act_e = self.expr(action)
            try:
                acts = [int(self._const(act_e, "VECTOR SELECT with a numerical action"))]
            except UnsupportedFeatureError:
                acts = list(range(11))  # chosen at run time: IF THEN ELSE over the actions
            err_act = int(self._const(self.expr(err), "VECTOR SELECT with an error action"))
            axes = [i for i, d in enumerate(dims) if d.endswith("!")]
            keep = [i for i in range(len(dims)) if i not in axes]
            missing = self.expr(miss)
            nsel = np.sum(np.transpose(sv != 0, keep + axes).reshape(
                tuple(len(coords[i]) for i in keep) + (-1,)), axis=-1)
            if (np.any(nsel == 0) and err_act in (1, 3)) or (np.any(nsel > 1)
                                                             and err_act in (2, 3)):
                raise self.unsupported("VECTOR SELECT whose selection triggers its error action")
            results = {a: self._select_action(a, sv, ed, dims, coords, axes) for a in acts}
            out = np.empty(nsel.shape, dtype=object)
            for idx in np.ndindex(*nsel.shape):
                if nsel[idx] == 0:
                    out[idx] = missing
                elif len(acts) == 1:
                    out[idx] = results[acts[0]][idx]
                else:
                    acc = IR.Num(float("nan"))  # PySD raises on an action outside 0..10
                    for a in reversed(acts):
                        acc = IR.Call("if_then_else", (IR.Op("=", (act_e, IR.Num(float(a)))),
                                                       results[a][idx], acc))
                    out[idx] = acc
            return _A([dims[i] for i in keep], [coords[i] for i in keep], out)

        def _vector_order(self, fname: str, ast) -> _A:
            """VECTOR SORT ORDER / RANK / REORDER along the last axis, as PySD computes them
            (numpy's argsort, stable on PySD's short vectors; 0-based orders, 1-based ranks),
            written with comparisons so the vector may change in time."""
            vec = self.arr(ast.arguments[0])
            if not vec.dims:
                raise self.unsupported(f"{fname.upper().replace('_', ' ')} of a single value")
            if fname == "vector_reorder":
                order = self.arr(ast.arguments[1])
                dims, coords, (vd, od) = self.broadcast([vec, order])
                if dims[-1] != vec.dims[-1]:
                    raise self.unsupported("VECTOR REORDER with the order over another range")
                out = np.empty(vd.shape, dtype=object)
                n = vd.shape[-1]
                for idx in np.ndindex(*vd.shape):
                    acc = IR.Num(float("nan"))
                    for i in reversed(range(n)):
                        acc = IR.Call("if_then_else", (IR.Op("=", (od[idx], IR.Num(float(i)))),
                                                       vd[idx[:-1] + (i,)], acc))
                    out[idx] = acc
                return _A(dims, coords, out)
            direction = self._const(self.expr(ast.arguments[1]),
                                    f"{fname.upper().replace('_', ' ')} with a direction")
            d = vec.data
            n = d.shape[-1]
            one, zero = IR.Num(1.0), IR.Num(0.0)
            before = np.empty(d.shape, dtype=object)  # ascending stable position, 0-based
            for idx in np.ndindex(*d.shape):
                i = idx[-1]
                terms = []
                for j in range(n):
                    if j == i:
                        continue
                    xj = d[idx[:-1] + (j,)]
                    cmp = IR.Op("<", (xj, d[idx])) if j > i else IR.Op("<=", (xj, d[idx]))
                    terms.append(IR.Call("if_then_else", (cmp, one, zero)))  # a number
                before[idx] = self._fold("sum", terms) if terms else zero
            out = np.empty(d.shape, dtype=object)
            for idx in np.ndindex(*d.shape):
                k = idx[-1]
                if fname == "vector_rank":
                    out[idx] = (IR.Op("+", (before[idx], one)) if direction > 0
                                else IR.Op("-", (IR.Num(float(n)), before[idx])))
                    continue
                pos = k if direction > 0 else n - 1 - k  # flipped for direction <= 0
                acc = IR.Num(float("nan"))
                for i in reversed(range(n)):
                    acc = IR.Call("if_then_else", (
                        IR.Op("=", (before[idx[:-1] + (i,)], IR.Num(float(pos)))),
                        IR.Num(float(i)), acc))
                out[idx] = acc
            return _A(vec.dims, vec.coords, out)

        def _select_action(self, act: int, sv, ed, dims, coords, axes) -> np.ndarray:
            """VECTOR SELECT's numerical action ``act``, reduced as PySD does: unselected
            entries are NaN, skipped (0 in sums, as numpy's nansum fills them)."""
            if act not in range(11):
                raise self.unsupported(f"VECTOR SELECT with numerical action {act}")
            items = np.empty(sv.shape, dtype=object)
            for idx in np.ndindex(*sv.shape):
                s_, e = float(sv[idx]), ed[idx]
                if s_ == 0:
                    items[idx] = None
                elif act in range(5):
                    items[idx] = IR.Op("*", (IR.Num(s_), e))
                elif act == 5:
                    items[idx] = IR.Op("^", (e, IR.Num(s_)))
                else:
                    items[idx] = e
            kind = {0: "sum", 6: "sum", 4: "sum", 10: "sum", 1: "prod", 5: "prod", 7: "prod",
                    2: "vmin", 8: "vmin", 3: "vmax", 9: "vmax"}[act]
            if kind == "sum":
                filled = np.vectorize(lambda x: IR.Num(0.0) if x is None else x,
                                      otypes=[object])(items)
                red = self._reduce_axes("sum", dims, coords, filled, axes).data
            else:
                keep = [i for i in range(len(dims)) if i not in axes]
                flat = np.transpose(items, keep + axes)
                flat = flat.reshape(flat.shape[:len(keep)] + (-1,))
                red = np.empty(flat.shape[:-1], dtype=object)
                for idx in np.ndindex(*red.shape):
                    chosen = [x for x in flat[idx] if x is not None]
                    red[idx] = self._fold(kind, chosen) if chosen else None
            if act in (4, 10):
                n = np.sum(np.transpose(sv != 0, [i for i in range(len(dims)) if i not in axes]
                                        + axes).reshape(red.shape + (-1,)), axis=-1)
                avg = np.empty(red.shape, dtype=object)
                for idx in np.ndindex(*red.shape):
                    avg[idx] = IR.Op("/", (red[idx], IR.Num(float(n[idx]))))
                red = avg
            return red

    _CLASS = _ArrayBuilder
    return _CLASS
