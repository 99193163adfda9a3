"""Dimensional consistency of a model, from its own units fields (a unit algebra on the IR).

Every variable's units field (``$B/Year``, ``GW``, ``Dmnl``, ``1/Year``, ``$B/(GW*Year)``,
``Year^2``...) is parsed into a dimension: a mapping from base-unit names to rational
exponents. Base units are the names the model uses (case-insensitive, spaces collapsed); no
conversions are attempted, as in Vensim's units check. ``Dmnl``, ``dimensionless`` and ``1``
are the empty dimension. An empty units field means "not declared": the variable is not
checked and, where it is used, its units are unknown.

The units of every equation are inferred bottom-up over the IR expression:

* a number literal is polymorphic (it takes whatever units its context needs), as in Vensim;
* ``+``, ``-``, ``MIN``, ``MAX``, comparisons, the branches of ``IF THEN ELSE`` and the
  arguments of ``XIDZ``'s fallback must agree; ``*``, ``/``, ``^`` (numeric exponent) and
  ``SQRT`` combine; ``EXP``, ``LN``, trigonometric functions give dimensionless results;
* ``TIME`` has the units of TIME STEP; ``STEP(h, t)`` has the units of ``h``; ``RAMP(s, ...)``
  those of ``s * time``; ``PULSE`` is dimensionless; a lookup call has the lookup's units;
* unknown units anywhere make the result unknown (never an error).

Then each auxiliary's equation must have its declared units, each stock's net flow its units
per time unit and its initial value its units. Stocks created by expanding SMOOTH/DELAY/TREND
have no units field and are not checked. :func:`check_units` returns every disagreement
(:class:`UnitIssue`: variable, file, line, both sides' units).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .errors import AicarouselError
from .ir import Call, Lookup, ModelIR, Num, Op, Ref, Time, refs

__all__ = ["UnitsSyntaxError", "UnitIssue", "parse_units", "format_units", "check_units",
           "definition_lines", "time_unit", "rate_variables", "DIMENSIONLESS_WORDS"]

#: Units fields meaning "no dimension".
DIMENSIONLESS_WORDS = {"dmnl", "dimensionless", "1", "unitless", "fraction"}


class UnitsSyntaxError(AicarouselError):
    """A units field cannot be parsed."""


Dim = dict  # base unit (normalised) -> Fraction exponent; {} = dimensionless

#: Units of a number literal: dimensionless in a product, whatever the other side is in a sum.
POLY = "number"


def _norm(word: str) -> str:
    return " ".join(word.lower().split())


_TOKEN = re.compile(r"\s*(?:(?P<op>[*/^()])|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[^*/^()]+))")


def parse_units(text: str, spelling: dict | None = None) -> Dim | None:
    """Parse a Vensim/XMILE units field into a dimension.

    Parameters
    ----------
    text : str
        e.g. ``"$B/(GW*Year)"``; empty means undeclared.
    spelling : dict, optional
        Filled with ``normalised name -> spelling as first written`` (for messages).

    Returns
    -------
    dict or None
        Base unit -> exponent (:class:`fractions.Fraction`); None when undeclared.

    Raises
    ------
    UnitsSyntaxError
        On malformed text (unbalanced parentheses, dangling operator, non-numeric exponent).
    """
    text = (text or "").strip()
    if not text or text == "?":
        return None
    toks = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UnitsSyntaxError(f"cannot parse units {text!r} at {text[pos:]!r}")
        pos = m.end()
        if m.group("op"):
            toks.append(("op", m.group("op")))
        elif m.group("num") is not None:
            toks.append(("num", m.group("num")))
        elif m.group("word").strip():
            toks.append(("word", m.group("word").strip()))
    i = 0

    def peek():
        return toks[i] if i < len(toks) else (None, None)

    def expr() -> Dim:
        nonlocal i
        d = term()
        while peek() in (("op", "*"), ("op", "/")):
            op = toks[i][1]
            i += 1
            r = term()
            d = _mul(d, r if op == "*" else _pow(r, Fraction(-1)))
        return d

    def term() -> Dim:
        nonlocal i
        d = factor()
        if peek() == ("op", "^"):
            i += 1
            kind, val = peek()
            if (kind, val) == ("op", "("):  # Year^(-1) or ^(1/2)
                i += 1
                e = _exponent()
                if peek() != ("op", ")"):
                    raise UnitsSyntaxError(f"units {text!r}: ')' expected after exponent")
                i += 1
                return _pow(d, e)
            if kind != "num":
                raise UnitsSyntaxError(f"units {text!r}: the exponent after '^' must be a number")
            i += 1
            e = Fraction(val).limit_denominator(1000)
            return _pow(d, e)
        return d

    def _exponent() -> Fraction:
        nonlocal i
        kind, val = peek()
        if kind != "num":
            raise UnitsSyntaxError(f"units {text!r}: the exponent must be a number")
        i += 1
        e = Fraction(val).limit_denominator(1000)
        if peek() == ("op", "/"):
            i += 1
            k2, v2 = peek()
            if k2 != "num":
                raise UnitsSyntaxError(f"units {text!r}: the exponent must be a number")
            i += 1
            e /= Fraction(v2)
        return e

    def factor() -> Dim:
        nonlocal i
        kind, val = peek()
        if kind is None:
            raise UnitsSyntaxError(f"units {text!r}: a unit is missing at the end")
        i += 1
        if (kind, val) == ("op", "("):
            d = expr()
            if peek() != ("op", ")"):
                raise UnitsSyntaxError(f"units {text!r}: unbalanced parentheses")
            i += 1
            return d
        if kind == "num":
            if float(val) != 1.0:
                raise UnitsSyntaxError(f"units {text!r}: a number other than 1 is not a unit")
            return {}
        if kind == "word":
            w = _norm(val)
            if w in DIMENSIONLESS_WORDS:
                return {}
            if spelling is not None:
                spelling.setdefault(w, val)
            return {w: Fraction(1)}
        raise UnitsSyntaxError(f"units {text!r}: unexpected {val!r}")

    d = expr()
    if i != len(toks):
        raise UnitsSyntaxError(f"units {text!r}: unexpected {toks[i][1]!r}")
    return d


def _mul(a: Dim | None, b: Dim | None) -> Dim | None:
    if a is None or b is None:
        return None
    if a is POLY and b is POLY:
        return POLY
    a = {} if a is POLY else a
    b = {} if b is POLY else b
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Fraction(0)) + v
        if out[k] == 0:
            del out[k]
    return out


def _known(d) -> bool:
    return d is not None and d is not POLY


def _pow(a: Dim | None, e: Fraction) -> Dim | None:
    if a is None or a is POLY:
        return a
    return {k: v * e for k, v in a.items() if v * e != 0}


def format_units(d: Dim | None, spelling: dict | None = None) -> str:
    """Human-readable units of a dimension (``"$B/Year"``, ``"Dmnl"``, ``"?"`` if unknown)."""
    if d is None:
        return "?"
    if d is POLY:
        return "number"
    if not d:
        return "Dmnl"
    sp = spelling or {}

    def one(k, e):
        name = sp.get(k, k)
        return name if e == 1 else f"{name}^{e}"

    num = [one(k, e) for k, e in sorted(d.items()) if e > 0]
    den = [one(k, -e) for k, e in sorted(d.items()) if e < 0]
    top = "*".join(num) if num else "1"
    if not den:
        return top
    bottom = den[0] if len(den) == 1 else "(" + "*".join(den) + ")"
    return f"{top}/{bottom}"


@dataclass
class UnitIssue:
    """One units disagreement.

    Attributes
    ----------
    variable : str
        Model name of the variable whose equation is inconsistent (a subscripted variable by
        its own name, once, with its failing elements named in ``message``).
    file : str
        Model file name.
    line : int or None
        1-based line of the variable's definition.
    left, right : str
        The two units that disagree (e.g. declared vs equation, or the two sides of ``+``).
    message : str
        What disagrees, in words.
    """

    variable: str
    file: str
    line: int | None
    left: str
    right: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.variable!r}: {self.message}"


def definition_lines(path: Path) -> dict[str, int]:
    """1-based line of each variable's definition in a .mdl or XMILE file, by normalised name."""
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    lines = text.splitlines()
    if Path(path).suffix.lower() == ".mdl":
        for k, line in enumerate(lines, 1):
            m = re.match(r'^\s*("[^"]+"|[^=~|:(\[{]+?)\s*(?:\[[^\]]*\]\s*)?'  # x[R] =
                         r'(?::EXCEPT:\s*\[[^\]]*\](?:\s*,\s*\[[^\]]*\])*\s*)?(=|\(|:=|==)',
                         line)
            if m:
                out.setdefault(_vname(m.group(1)), k)
    else:
        for k, line in enumerate(lines, 1):
            for m in re.finditer(r'<(?:stock|flow|aux)\b[^>]*\bname="([^"]+)"', line):
                out.setdefault(_vname(m.group(1)), k)
    return out


def _vname(name: str) -> str:
    return " ".join(name.strip().strip('"').replace("_", " ").replace("\\n", " ").lower().split())


def unit_equivalences(path: Path) -> dict[str, str]:
    """Equivalent unit names declared in the model file: ``name -> canonical name``.

    Vensim writes them in the settings block as ``22:Person,People,Persons``; XMILE as
    ``<unit name="person"><alias>people</alias></unit>`` in ``<model_units>``.
    """
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    if Path(path).suffix.lower() == ".mdl":
        for m in re.finditer(r"^22:(.+)$", text, flags=re.M):
            names = [_norm(x) for x in m.group(1).split(",") if x.strip()]
            for x in names[1:]:
                out[x] = names[0]
    else:
        for m in re.finditer(r'<unit\s+name="([^"]+)"[^>]*>(.*?)</unit>', text, flags=re.S):
            for a in re.findall(r"<alias>([^<]+)</alias>", m.group(2)):
                out[_norm(a)] = _norm(m.group(1))
    return out


def _singular(word: str) -> str:
    """Plural and singular unit names are the same unit (``Days`` = ``Day``)."""
    if word == "people":
        return "person"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _canonical(d, equiv: dict[str, str]):
    if d is None:
        return None
    out: dict = {}
    for k, e in d.items():
        c = _singular(equiv.get(k, k))
        out[c] = out.get(c, Fraction(0)) + e
    return {k: e for k, e in out.items() if e != 0}


class _Checker:
    def __init__(self, ir: ModelIR):
        self.ir = ir
        self.spelling: dict[str, str] = {}
        self.declared: dict[str, Dim | None] = {}
        self.syntax: list[tuple[str, str]] = []
        equiv = unit_equivalences(ir.path)
        for n, v in ir.variables.items():
            try:
                d = None if v.internal else parse_units(v.units, self.spelling)
                self.declared[n] = _canonical(d, equiv)
            except UnitsSyntaxError as exc:
                self.declared[n] = None
                self.syntax.append((n, str(exc)))
        for k in list(self.spelling):
            self.spelling.setdefault(_singular(equiv.get(k, k)), self.spelling[k])
        tu = self.declared.get("time_step") or self.declared.get("initial_time")
        self.time = tu if tu else None
        self.issues: list[tuple[str, str, str, str]] = []  # (py_name, left, right, message)
        self.current = ""

    def fmt(self, d):
        return format_units(d, self.spelling)

    def mismatch(self, a, b, what):
        self.issues.append((self.current, self.fmt(a), self.fmt(b),
                            f"{what}: {self.fmt(a)} vs {self.fmt(b)}"))

    def same(self, a, b, what):
        """Units of an operation whose arguments must agree."""
        if a is None or a is POLY:
            return b if b is not None else a
        if b is None or b is POLY:
            return a
        if a != b:
            self.mismatch(a, b, what)
            return None
        return a

    def infer(self, e):
        if isinstance(e, Num):
            return POLY
        if isinstance(e, Ref):
            return self.declared.get(e.name)
        if isinstance(e, Time):
            return self.time
        if isinstance(e, Lookup):
            self.infer(e.x)
            return self.declared.get(e.table_name)
        if isinstance(e, Op):
            args = [self.infer(a) for a in e.args]
            op = e.op
            if op in ("neg",):
                return args[0]
            if op == "not":
                return {}
            if op in ("+", "-"):
                return self.same(args[0], args[1], f"the two sides of '{op}' differ")
            if op in ("<", ">", "<=", ">=", "=", "<>"):
                self.same(args[0], args[1], f"the two sides of '{op}' differ")
                return {}
            if op in ("and", "or"):
                return {}
            if op == "*":
                return _mul(args[0], args[1])
            if op == "/":
                return _mul(args[0], _pow(args[1], Fraction(-1)))
            if op == "^":
                return self._power(e.args, args)
            return None
        if isinstance(e, Call):
            return self._call(e)
        return None

    def _power(self, raw, args):
        base, _ = args
        if isinstance(raw[1], Num):
            return _pow(base, Fraction(raw[1].value).limit_denominator(1000))
        if isinstance(raw[1], Op) and raw[1].op == "neg" and isinstance(raw[1].args[0], Num):
            return _pow(base, -Fraction(raw[1].args[0].value).limit_denominator(1000))
        if base == {} or base is POLY:
            return base
        return None

    def _call(self, e: Call):
        f = e.func
        args = [self.infer(a) for a in e.args]
        if f in ("min", "max"):
            return self.same(args[0], args[1], f"the arguments of {f.upper()} differ")
        if f == "if_then_else":
            return self.same(args[1], args[2], "the two branches of IF THEN ELSE differ")
        if f in ("abs", "integer", "quantum", "modulo"):
            return args[0]
        if f == "sqrt":
            return _pow(args[0], Fraction(1, 2))
        if f == "power":
            return self._power(e.args, args)
        if f == "xidz":
            q = _mul(args[0], _pow(args[1], Fraction(-1)))
            return self.same(q, args[2], "XIDZ's quotient and its fallback differ")
        if f == "zidz":
            return _mul(args[0], _pow(args[1], Fraction(-1)))
        if f == "step":
            return args[0]
        if f == "ramp":  # slope * time; a literal slope stays a number
            return args[0] if args[0] is POLY else _mul(args[0], self.time)
        if f in ("pulse", "pulse_train", "pi"):
            return {}
        # exp, ln, log, trigonometric functions
        return {}

    def infer_undeclared(self) -> None:
        """Give undeclared auxiliaries the units of their equation (evaluation order)."""
        for n in self.ir.order:
            v = self.ir.variables[n]
            if v.internal or self.declared.get(n) is not None or v.expr is None:
                continue
            saved = list(self.issues)
            d = self.infer(v.expr)
            self.issues = saved
            if _known(d):
                self.declared[n] = d
                self.inferred.add(n)

    def _blame_flows(self, stock, want) -> bool:
        """A stock's net flow a sum or difference of flow variables (of the stock's own
        element, for a subscripted stock): each flow with declared units other than the
        stock's units per time unit is reported as the flow's own mismatch (as pysimlin
        attaches it to the flow). True if any was."""
        flows, stack = [], [stock.expr]
        while stack:
            e = stack.pop()
            if isinstance(e, Ref):
                flows.append(e.name)
            elif isinstance(e, Op) and e.op in ("+", "-", "neg"):
                stack.extend(e.args)
            else:
                return False
        arr = getattr(stock, "array", None)
        for f in flows:  # only flows of the stock's own element (no mapping, no other element)
            fa = getattr(self.ir.variables[f], "array", None)
            if (fa is None) != (arr is None) or (fa is not None and fa[1] != arr[1]):
                return False
        found = False
        name = self.ir.arrays[arr[0]].real_name if arr is not None else stock.real_name
        for f in dict.fromkeys(flows):
            d = self.declared.get(f)
            if f in self.inferred or not _known(d) or d == want:
                continue
            self.current = f
            self.mismatch(want, d, f"expected units {self.fmt(want)} to match the stock "
                                   f"{name!r} (its units per time unit) but it is "
                                   f"declared {self.fmt(d)}")
            found = True
        return found

    def run(self) -> list[tuple[str, str, str, str]]:
        ir = self.ir
        self.inferred: set[str] = set()
        self.infer_undeclared()
        dt_inv = _pow(self.time, Fraction(-1)) if self.time is not None else None
        # Auxiliaries first, so that a stock whose flow is already reported is not reported
        # again for the same defect (one defect, one report; pysimlin does the same).
        reported: set[str] = set()
        names = sorted(ir.variables, key=lambda k: ir.variables[k].kind == "stock")
        for n in names:
            v = ir.variables[n]
            if v.internal or v.kind in ("lookup",):
                continue
            self.current = n
            before = len(self.issues)
            decl = self.declared.get(n)
            if v.kind == "stock":
                want = _mul(decl, dt_inv)
                if decl is not None and want is not None and self._blame_flows(v, want):
                    reported.add(n)  # the defect is the flow's, reported there
                    self.current = n
                    continue
                flow = self.infer(v.expr) if v.expr is not None else None
                if (decl is not None and _known(flow) and want is not None and flow != want
                        and len(self.issues) == before
                        and not (refs(v.expr) & reported)):
                    self.mismatch(want, flow,
                                  f"net flow should be units per time unit ({self.fmt(want)}) "
                                  f"but the flows give {self.fmt(flow)}")
            elif v.kind == "aux":
                got = self.infer(v.expr)
                if (decl is not None and _known(got) and got != decl
                        and len(self.issues) == before):
                    self.mismatch(decl, got, f"declared {self.fmt(decl)} but the equation "
                                             f"gives {self.fmt(got)}")
            if v.kind in ("stock", "aux") and v.initial is not None:  # INTEG / ACTIVE INITIAL
                init = self.infer(v.initial)
                if decl is not None and _known(init) and init != decl:
                    self.mismatch(decl, init, f"declared {self.fmt(decl)} but the initial "
                                              f"value gives {self.fmt(init)}")
            if len(self.issues) > before:
                reported.add(n)
        position = {k: i for i, k in enumerate(ir.variables)}
        self.issues.sort(key=lambda issue: position[issue[0]])  # stable: model order
        return self.issues


@dataclass
class UnitsResult:
    """Result of :func:`check_units`."""

    issues: list[UnitIssue]
    n_checked: int
    undeclared: list[str]

    @property
    def ok(self) -> bool:
        return not self.issues


def check_units(ir: ModelIR) -> UnitsResult:
    """Check every equation's units against the declared units of the model.

    Parameters
    ----------
    ir : ModelIR

    Returns
    -------
    UnitsResult
        ``issues`` (one :class:`UnitIssue` per disagreement, with file, line and both units),
        ``n_checked`` (variables with declared units), ``undeclared`` (model names of
        non-internal stocks and auxiliaries without units).
    """
    ch = _Checker(ir)
    raw = ch.run()
    lines = definition_lines(ir.path)
    rows = [(n, ir.variables[n].units, "?", msg) for n, msg in ch.syntax] + list(raw)
    # one issue per model variable: the elements of a subscripted variable (expanded to one
    # IR variable each) are reported together under the variable's name, as pysimlin does
    grouped: dict[str, list] = {}
    for n, left, right, msg in rows:
        v = ir.variables[n]
        array = getattr(v, "array", None)
        name = ir.arrays[array[0]].real_name if array is not None else v.real_name
        grouped.setdefault(name, []).append(
            (left, right, msg, "[" + ",".join(array[1]) + "]" if array is not None else None))
    issues = []
    for name, found in grouped.items():
        left, right, msg, _ = found[0]
        elems = [e for *_, e in found if e is not None]
        if elems:
            msg += (f" (element {elems[0]})" if len(elems) == 1 else
                    f" (elements {', '.join(elems[:6])}{', ...' if len(elems) > 6 else ''})")
            others = {(lt, rt) for lt, rt, *_ in found} - {(left, right)}
            if others:
                msg += "; other elements give " + "; ".join(
                    f"{lt} vs {rt}" for lt, rt in sorted(others)[:3])
        issues.append(UnitIssue(name, ir.path.name, lines.get(_vname(name)), left, right, msg))
    undeclared = [v.real_name for n, v in ir.variables.items()
                  if not v.internal and v.kind in ("aux", "stock")
                  and (ch.declared.get(n) is None or n in ch.inferred) and n != "time"]
    n_checked = sum(1 for n, v in ir.variables.items()
                    if not v.internal and ch.declared.get(n) is not None and n not in ch.inferred)
    return UnitsResult(issues, n_checked, undeclared)


def time_unit(ir: ModelIR) -> Dim | None:
    """The model's time unit as the units check reads it (TIME STEP's units field, else
    INITIAL TIME's), canonical (``{"month": 1}``); None when the model declares none."""
    return _Checker(ir).time


def rate_variables(ir: ModelIR) -> set[str]:
    """py_names of the variables declared per time unit and nothing else (``1/Year``,
    ``Dmnl/Month``, ``1/Days`` in a model counted in days): rates such as an expected growth
    rate. Empty when the model declares no time unit."""
    ch = _Checker(ir)
    if not ch.time:
        return set()
    per_time = _pow(ch.time, Fraction(-1))
    return {n for n, d in ch.declared.items() if _known(d) and d == per_time}
