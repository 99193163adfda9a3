"""Nothing in a model file may become code: neutralise what PySD writes into source, then check.

PySD translates a model into a Python module and imports it. Text from the model file reaches
that source in places where it is not escaped: comments become docstrings (``\"\"\"`` ends them,
a backslash becomes a newline), file, sheet and cell names of GET XLS/GET DIRECT functions are
pasted into ``r'...'`` literals (PySD's parser turns ``\\x27`` into a quote first). So the
defence has two layers, both structural:

1. :func:`sanitise_abstract_model` rewrites every free-text field of PySD's parse (element
   documentation, units) and refuses external-data arguments that could close a literal,
   before anything is written. A comment with quotes and backslashes still translates.
2. :func:`verify_translation` parses every generated ``.py`` with :mod:`ast` and accepts only
   the vocabulary PySD's builder emits (its imports, ``@component.add`` functions, module-level
   assignments, the names, attributes and statements PySD uses; ``Macro`` only on a sibling
   file of the translation). Anything else (an import, ``open``, ``getattr``, a dunder
   attribute, a class, ``exec``) is refused with one line naming the variable, before the
   module is ever imported.

The vocabulary was collected from PySD's translation of the 89 SDXorg test models and the
project's models (PySD 3.14); a new PySD version that emits something new is refused with a
message naming the construct, never silently trusted.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

from .errors import ModelFileError

#: Modules (and names) a translated model may import.
_IMPORTS = {
    "pathlib": {"Path"},
    "numpy": None, "xarray": None,  # ``import numpy as np`` / ``import xarray as xr``
    "scipy": {"stats", "special"},
    "pysd": {"Component"},
    "pysd.py_backend.functions": "*", "pysd.py_backend.statefuls": "*",
    "pysd.py_backend.lookups": "*", "pysd.py_backend.external": "*",
    "pysd.py_backend.data": "*", "pysd.py_backend.allocation": "*",
    "pysd.py_backend.model": {"Macro"},
}
_MODULE_ALIASES = {"numpy": "np", "xarray": "xr"}

#: Attribute names PySD's builder emits (numpy/xarray/scipy functions, DataArray methods,
#: the time object's accessors, the decorator). No file, import or reflection attribute.
_ATTRS = frozenset("""
DataArray abs add arange arccos arcsin arctan array cos cosh exp expand_dims final_time inf
initial_time interp joinpath loc log logical_and logical_not logical_or maximum minimum nan
ones_like parent pi power rename reset_coords saveper sin sinh sqrt stage tan tanh time_step
transpose values zeros_like linalg inv random uniform rvs truncexpon truncnorm max min prod sum
""".split())

#: Builtins a translation may call (all pure); every other builtin name is refused.
_BUILTINS = frozenset({"bool", "float", "int", "len", "sum", "abs", "min", "max", "round",
                       "range", "dict", "list", "tuple", "zip", "True", "False", "None"})
_DUNDER_NAMES = frozenset({"__data", "__file__", "__pysd_version__"})

_EXPR_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.Call, ast.keyword, ast.BinOp,
               ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Lambda, ast.arguments,
               ast.arg, ast.Dict, ast.List, ast.Tuple, ast.Subscript, ast.Slice, ast.Starred,
               ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)

_SAFE_FILE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Refused(Exception):
    def __init__(self, node: ast.AST, what: str):
        super().__init__(what)
        self.node, self.what = node, what


# ------------------------------------------------------------------ layer 0: parser ---

def _literal(text, *args, **kwargs):
    """What PySD's parser may ``eval``: Python literals only (numbers, quoted strings, tuples
    and lists of them). PySD calls ``eval`` on lookup ranges ``[...]``, whose grammar accepts
    any text without ``]``, so ``[(open(...),0)-(1,1)]`` ran code while parsing."""
    if args or kwargs:
        raise ValueError("aicarousel allows PySD's parser to evaluate literals only")
    try:
        return ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"only numbers are allowed here, not {str(text).strip()[:60]!r} "
                         f"(a lookup range or table holds code?)") from None


def harden_pysd_parser() -> None:
    """Make PySD's Vensim and XMILE parsers evaluate literals only (idempotent)."""
    from pysd.translators.vensim import vensim_element
    from pysd.translators.xmile import xmile_element

    for module in (vensim_element, xmile_element):
        module.eval = _literal  # module globals shadow the builtin for PySD's own calls


# ------------------------------------------------------------------ layer 1: sanitise ---

def neutral_text(text: str) -> str:
    """``text`` safe inside a PySD docstring: no run of three double quotes, no control chars.

    Backslashes are kept (PySD turns them into line breaks); ``\"\"\"`` becomes ``'''``.
    """
    text = _CONTROL.sub(" ", str(text))
    return re.sub(r'"{3,}', lambda m: "'" * len(m.group()), text)


def sanitise_abstract_model(abs_model, source: Path) -> None:
    """Neutralise every free-text field of PySD's parse in place; refuse unsafe file names.

    Parameters
    ----------
    abs_model : pysd AbstractModel
        From ``VensimFile.get_abstract_model()`` or ``XmileFile.get_abstract_model()``.
    source : Path
        The user's model file (for messages).

    Raises
    ------
    ModelFileError
        An external-data argument (file, sheet, cell) holds a quote, backslash or control
        character that would close the string PySD writes it into.
    """
    for section in abs_model.sections:
        for element in section.elements:
            if getattr(element, "documentation", None):
                element.documentation = neutral_text(element.documentation)
            if isinstance(getattr(element, "units", None), str):
                element.units = _CONTROL.sub(" ", element.units)
            for comp in element.components:
                _check_ast_strings(comp.ast, element.name, source)


def _check_ast_strings(node, name: str, source: Path, depth: int = 0, inside: bool = False) -> None:
    """Refuse external-data strings (file, sheet, cell) holding ``'``, ``\\`` or controls."""
    if depth > 200:
        return
    if isinstance(node, str):
        if inside and ("'" in node or "\\" in node or _CONTROL.search(node)):
            raise ModelFileError(
                f"{source}: variable {name!r} has a text argument {node[:60]!r} with a quote, "
                f"backslash or control character; refused (it would be pasted into the "
                f"generated Python code; use a plain file, sheet or cell name)")
        return
    if isinstance(node, (list, tuple)):
        for x in node:
            _check_ast_strings(x, name, source, depth + 1, inside)
        return
    fields = getattr(node, "__dataclass_fields__", None)
    if fields:
        # GET XLS/DIRECT ... structures: PySD pastes their strings into r'...' literals;
        # other strings (names, keywords) become identifiers or repr()
        inside = inside or type(node).__name__.startswith("Get")
        for f in fields:
            _check_ast_strings(getattr(node, f), name, source, depth + 1, inside)


# ------------------------------------------------------------------ layer 2: verify ---

def verify_translation(py_path: str | Path, model_name: str | Path = "model") -> None:
    """Check that ``py_path`` (a PySD translation) holds only what a translation may hold.

    Parameters
    ----------
    py_path : path
        A generated ``.py`` file (not imported).
    model_name : path or str
        The user's model file (for messages).

    Raises
    ------
    ModelFileError
        One line naming the model variable whose translation contains a construct outside
        PySD's vocabulary, and the construct.
    """
    py_path = Path(py_path)
    try:
        tree = ast.parse(py_path.read_text(encoding="utf-8"), filename=str(py_path))
    except (SyntaxError, ValueError) as exc:
        raise ModelFileError(f"{model_name}: the translation of the model is not valid Python "
                             f"({exc}); refused (a name or comment closes a string?)") from None
    siblings = {p.name for p in py_path.parent.glob("*.py")}
    checker = _Checker(siblings)
    for stmt in tree.body:
        try:
            checker.module_stmt(stmt)
        except _Refused as r:
            var = _variable_of(stmt)
            where = f"the translation of variable {var!r}" if var else \
                f"line {getattr(r.node, 'lineno', stmt.lineno)} of the translation"
            raise ModelFileError(
                f"{model_name}: {where} contains {r.what}, which PySD never generates; refused "
                f"(text in the model file, e.g. a comment, name or file name with quotes, "
                f"would run as code)") from None


def _variable_of(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.FunctionDef):
        for d in stmt.decorator_list:
            if isinstance(d, ast.Call):
                for k in d.keywords:
                    if k.arg == "name" and isinstance(k.value, ast.Constant):
                        return str(k.value.value)
        return stmt.name
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


class _Checker:
    def __init__(self, siblings: set[str]):
        self.siblings = siblings

    # statements ---------------------------------------------------------------
    def module_stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            return
        if (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                and isinstance(s.value.func, ast.Attribute) and s.value.func.attr == "add"
                and isinstance(s.value.func.value, ast.Name)
                and s.value.func.value.id.startswith("_")):
            self.expr(s.value)  # a further definition: _ext_data_x.add(...), lookups too
            return
        if isinstance(s, ast.Import):
            for a in s.names:
                if a.name not in _MODULE_ALIASES or a.asname not in (None, _MODULE_ALIASES[a.name]):
                    raise _Refused(s, f"an import of {a.name!r}")
            return
        if isinstance(s, ast.ImportFrom):
            allowed = _IMPORTS.get(s.module or "", False)
            if s.level or allowed is False or allowed is None:
                raise _Refused(s, f"an import from {s.module!r}")
            for a in s.names:
                if a.name == "*" or a.asname or (allowed != "*" and a.name not in allowed):
                    raise _Refused(s, f"an import of {a.name!r} from {s.module!r}")
            return
        if isinstance(s, ast.Assign):
            self.targets(s.targets, module=True)
            if (len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                    and s.targets[0].id == "_root"):
                if ast.dump(s.value) != ast.dump(ast.parse("Path(__file__).parent",
                                                           mode="eval").body):
                    raise _Refused(s, "an unexpected '_root'")
                return
            self.expr(s.value)
            return
        if isinstance(s, ast.FunctionDef):
            for d in s.decorator_list:
                if not (isinstance(d, ast.Call) and ast.unparse(d.func) == "component.add"):
                    raise _Refused(d, f"the decorator {ast.unparse(d)[:40]!r}")
                self.expr(d)
            self.arguments(s.args)
            for b in s.body:
                self.function_stmt(b)
            return
        raise _Refused(s, f"a {type(s).__name__} statement")

    def function_stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            return
        if isinstance(s, ast.Return):
            if s.value is not None:
                self.expr(s.value)
            return
        if isinstance(s, ast.Assign):
            self.targets(s.targets)
            self.expr(s.value)
            return
        if isinstance(s, ast.For) and not s.orelse:
            self.targets([s.target])
            self.expr(s.iter)
            for b in s.body:
                self.function_stmt(b)
            return
        if isinstance(s, ast.If):
            self.expr(s.test)
            for b in s.body + s.orelse:
                self.function_stmt(b)
            return
        raise _Refused(s, f"a {type(s).__name__} statement")

    def targets(self, targets, module: bool = False) -> None:
        for t in targets:
            if isinstance(t, ast.Name):
                self.name(t)
            elif isinstance(t, ast.Subscript) and not module:
                self.expr(t)
            elif isinstance(t, ast.Tuple):
                self.targets(t.elts, module)
            else:
                raise _Refused(t, f"an assignment to {ast.unparse(t)[:40]!r}")

    def arguments(self, a: ast.arguments) -> None:
        for d in a.defaults + [x for x in a.kw_defaults if x is not None]:
            self.expr(d)

    # expressions --------------------------------------------------------------
    def name(self, n: ast.Name) -> None:
        ident = n.id
        if ident.startswith("__") and ident not in _DUNDER_NAMES:
            raise _Refused(n, f"the name {ident!r}")
        if ident in {"Path", "__file__"}:
            raise _Refused(n, f"a use of {ident!r}")
        if hasattr(builtins, ident) and ident not in _BUILTINS:
            raise _Refused(n, f"the builtin {ident!r}")

    def expr(self, e: ast.AST) -> None:
        stack = [e]
        while stack:
            node = stack.pop()
            if not isinstance(node, _EXPR_NODES):
                raise _Refused(node, f"a {type(node).__name__} expression")
            children = list(ast.iter_child_nodes(node))
            if isinstance(node, ast.Name):
                self.name(node)
            elif isinstance(node, ast.Attribute):
                if node.attr not in _ATTRS:
                    raise _Refused(node, f"the attribute {node.attr!r}")
                if node.attr in {"joinpath", "parent"}:
                    raise _Refused(node, f"a use of {node.attr!r} outside a macro reference")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "Macro":
                self.macro_file(node)
                children = [c for c in children if c is not node.args[0]]
            elif isinstance(node, ast.Constant) and isinstance(node.value, bytes):
                raise _Refused(node, "a bytes literal")
            stack.extend(children)

    def macro_file(self, call: ast.Call) -> None:
        """``Macro(_root.joinpath("<sibling>.py"), ...)``: PySD's reference to a macro file."""
        first = call.args[0] if call.args else None
        ok = (isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute)
              and first.func.attr == "joinpath" and isinstance(first.func.value, ast.Name)
              and first.func.value.id == "_root" and len(first.args) == 1
              and isinstance(first.args[0], ast.Constant) and not first.keywords
              and isinstance(first.args[0].value, str)
              and _SAFE_FILE.match(first.args[0].value) is not None
              and first.args[0].value in self.siblings)
        if not ok:
            raise _Refused(call, "a Macro call on a file outside the translation")
