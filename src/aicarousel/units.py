"""Dimensional consistency of a model, checked on the shared IR (``aicarousel.ir``).

Each variable's declared unit (the units field of the model file) is parsed into a product of
base units with integer exponents (``$B/(GW*Year)`` -> {$B: 1, GW: -1, Year: -1};
``Dmnl`` and ``1`` are dimensionless). The unit of every equation is then derived from the
units of what it references and compared with the declared unit:

- ``+``, ``-``, comparisons, MIN/MAX, IF THEN ELSE branches and XIDZ's fallback need equal
  units; ``*`` and ``/`` combine them; ``x ^ n`` needs a numeric ``n`` or a dimensionless ``x``;
  EXP/LN and lookup inputs are not checked beyond that (lookups return their declared unit).
- Number literals are unit-free wildcards (Vensim's convention), so ``1 - share`` is fine.
- A stock's net flow must have the stock's unit per time unit; TIME has the time unit.
- Stocks created by expanding SMOOTH/DELAY/INITIAL carry their input's unit.

``check_units(ir)`` returns one message per inconsistent equation (empty list: consistent).
"""

from __future__ import annotations

import re
from collections import Counter

from .ir import Call, Lookup, ModelIR, Num, Op, Ref, Time

Unit = tuple  # sorted tuple of (base, exponent), exponent != 0; () is dimensionless

ANY = None  # wildcard (number literals)

_TOKEN = re.compile(r"\s*(\(|\)|\*|/|\^|-?\d+|[^()*/^\s]+)")


def _norm(c: Counter) -> Unit:
    return tuple(sorted((k, v) for k, v in c.items() if v != 0))


def parse_unit(text: str) -> Unit:
    """Parse a Vensim unit string into a :data:`Unit`; raises ValueError when malformed."""
    text = (text or "").strip()
    if text in ("", "Dmnl", "dmnl", "1"):
        return ()
    toks = _TOKEN.findall(text)
    pos = 0

    def factor() -> Counter:
        nonlocal pos
        tok = toks[pos]
        pos += 1
        if tok == "(":
            c = expr()
            if pos >= len(toks) or toks[pos] != ")":
                raise ValueError(f"unbalanced parentheses in unit {text!r}")
            pos += 1
        elif tok in ("Dmnl", "1"):
            c = Counter()
        else:
            c = Counter({tok: 1})
        if pos < len(toks) and toks[pos] == "^":
            n = int(toks[pos + 1])
            pos += 2
            c = Counter({k: v * n for k, v in c.items()})
        return c

    def expr() -> Counter:
        nonlocal pos
        c = factor()
        while pos < len(toks) and toks[pos] in ("*", "/"):
            op = toks[pos]
            pos += 1
            f = factor()
            for k, v in f.items():
                c[k] += v if op == "*" else -v
        return c

    out = expr()
    if pos != len(toks):
        raise ValueError(f"cannot parse unit {text!r}")
    return _norm(out)


def _mul(a, b, sign=1):
    if a is ANY or b is ANY:
        return ANY if (a is ANY and b is ANY) else (a if b is ANY else (b if sign == 1 else
                                                                          _mul((), b, -1)))
    c = Counter(dict(a))
    for k, v in b:
        c[k] += sign * v
    return _norm(c)


def show(u) -> str:
    """A unit as text (``Dmnl`` when dimensionless)."""
    if u is ANY:
        return "?"
    if not u:
        return "Dmnl"
    num = "*".join(k if v == 1 else f"{k}^{v}" for k, v in u if v > 0) or "1"
    den = "*".join(k if v == -1 else f"{k}^{-v}" for k, v in u if v < 0)
    return num + (f"/({den})" if "*" in den else f"/{den}" if den else "")


class _Checker:
    def __init__(self, ir: ModelIR, time_unit: str = "Year"):
        self.ir = ir
        self.time = parse_unit(time_unit)
        self.declared: dict[str, Unit] = {}
        self.problems: list[str] = []
        for name, v in ir.variables.items():
            if v.internal:
                continue
            try:
                self.declared[name] = parse_unit(v.units.split("[")[0] if v.units else "")
            except (ValueError, IndexError) as e:
                self.problems.append(f"{v.real_name}: {e}")

    def unit_of(self, name: str):
        if name in self.declared:
            return self.declared[name]
        v = self.ir.variables.get(name)
        if v is not None and v.internal and v.initial is not None:
            return ANY  # expanded SMOOTH/DELAY state: unit of its input, not declared
        return ANY

    def _same(self, units, what, where):
        known = [u for u in units if u is not ANY]
        if known and any(u != known[0] for u in known):
            self.problems.append(f"{where}: {what} mixes " + ", ".join(show(u) for u in known))
        return known[0] if known else ANY

    def expr(self, e, where: str):
        if isinstance(e, Num):
            return ANY
        if isinstance(e, Time):
            return self.time
        if isinstance(e, Ref):
            return self.unit_of(e.name)
        if isinstance(e, Lookup):
            self.expr(e.x, where)
            return self.unit_of(e.table_name)
        if isinstance(e, Op):
            args = [self.expr(a, where) for a in e.args]
            if e.op in ("neg", "not"):
                return args[0]
            if e.op in ("+", "-"):
                return self._same(args, f"'{e.op}'", where)
            if e.op in ("<", ">", "<=", ">=", "=", "<>"):
                self._same(args, f"comparison '{e.op}'", where)
                return ()
            if e.op in ("and", "or"):
                return ()
            if e.op == "*":
                return _mul(args[0], args[1])
            if e.op == "/":
                return _mul(args[0], args[1], -1)
            if e.op == "^":
                base, expo = e.args
                if isinstance(expo, Num):
                    if args[0] is ANY:
                        return ANY
                    n = expo.value
                    if float(n).is_integer():
                        return _norm(Counter({k: v * int(n) for k, v in args[0]}))
                if args[0] not in (ANY, ()):
                    self.problems.append(f"{where}: power of a quantity with unit {show(args[0])}")
                if args[1] not in (ANY, ()):
                    self.problems.append(f"{where}: exponent with unit {show(args[1])}")
                return ()
            return ANY
        if isinstance(e, Call):
            f = e.func
            args = [self.expr(a, where) for a in e.args]
            if f in ("min", "max"):
                return self._same(args, f.upper(), where)
            if f == "abs":
                return args[0]
            if f == "if_then_else":
                return self._same(args[1:], "IF THEN ELSE branches", where)
            if f == "xidz":
                return self._same([_mul(args[0], args[1], -1), args[2]], "XIDZ", where)
            if f == "zidz":
                return _mul(args[0], args[1], -1)
            if f in ("step", "ramp"):
                return args[0] if f == "step" else _mul(args[0], self.time)
            if f in ("exp", "ln", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh"):
                for a in args[:1]:
                    if a not in (ANY, ()):
                        self.problems.append(f"{where}: {f.upper()} of a quantity with unit {show(a)}")
                return ()
            if f == "sqrt":
                if args[0] is ANY:
                    return ANY
                if any(v % 2 for _, v in args[0]):
                    self.problems.append(f"{where}: SQRT of {show(args[0])}")
                return _norm(Counter({k: v // 2 for k, v in args[0]}))
            if f in ("pulse", "pulse_train"):
                return ()
            return ANY
        return ANY

    def run(self) -> list[str]:
        for name, v in self.ir.variables.items():
            if v.internal or v.kind in ("lookup",):
                continue
            declared = self.declared.get(name)
            if declared is None:
                continue
            if v.kind == "constant":
                continue
            got = self.expr(v.expr, v.real_name)
            want = _mul(declared, self.time, -1) if v.kind == "stock" else declared
            if got is not ANY and got != want:
                what = "net flow" if v.kind == "stock" else "equation"
                self.problems.append(f"{v.real_name}: {what} has unit {show(got)}, "
                                     f"declared {show(want)}")
            if v.kind == "stock" and v.initial is not None:
                gi = self.expr(v.initial, v.real_name + " (initial)")
                if gi is not ANY and gi != declared:
                    self.problems.append(f"{v.real_name}: initial value has unit {show(gi)}, "
                                         f"declared {show(declared)}")
        return self.problems


def check_units(ir: ModelIR, time_unit: str = "Year") -> list[str]:
    """Every dimensional inconsistency of the model's equations, one message each."""
    return _Checker(ir, time_unit).run()
