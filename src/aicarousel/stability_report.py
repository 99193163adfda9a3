"""Reports of the stability analyses: plain words, Markdown and LaTeX.

Moved out of :mod:`aicarousel.stability` (which computes; this module only formats). Every
function takes a result of :func:`aicarousel.stability.analyse_closed_form` or
:func:`aicarousel.stability.analyse_along_baseline` and returns text; files are written by the
callers through :mod:`aicarousel.atomic`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from aicarousel.stability import LAMBDA

if TYPE_CHECKING:
    from aicarousel.ir import ModelIR
    from aicarousel.stability import BaselineResult, ClosedFormResult

__all__ = ["fmt", "plain_words", "report_markdown", "report_latex", "baseline_markdown"]



def fmt(x, digits=4) -> str:
    """A number (real or complex) with ``digits`` significant digits; None -> "none in range"."""
    if x is None:
        return "none in range"
    if isinstance(x, complex):
        if abs(x.imag) < 1e-12:
            return f"{x.real:.{digits}g}"
        return f"{x.real:.{digits}g} {'+' if x.imag >= 0 else '-'} {abs(x.imag):.{digits}g}i"
    return f"{float(x):.{digits}g}"


def plain_words(res: ClosedFormResult) -> list[str]:
    """The stability conditions of a closed-form result, as sentences."""
    ir = res.system.ir
    rn = {n: v.real_name for n, v in ir.variables.items()}
    lines = []
    eq = ", ".join(f"{rn[k]} = {fmt(v)}" for k, v in res.equilibrium_values.items())
    lines.append(f"Equilibrium at baseline parameters: {eq}.")
    if res.other_equilibria:
        others = "; ".join(", ".join(f"{rn[k]} = {fmt(v)}" for k, v in e.items())
                           for e in res.other_equilibria)
        lines.append(f"Other equilibria (not analysed; the one above is preferred because "
                     f"its stocks are all positive or non-negative): {others}.")
    d = res.dominant
    verdict = res.verdict
    osc = abs(d.imag) > 1e-9
    if verdict == "neutral":
        kind = ("a sustained oscillation (neither damped nor growing)" if osc else
                "neither decay nor growth (a zero eigenvalue: a conserved quantity or a pure "
                "integrator)")
    else:
        kind = ("a damped oscillation" if osc and d.real < 0 else
                "a growing oscillation" if osc else
                "monotonic decay" if d.real < 0 else "monotonic growth")
    per = f", period {2 * np.pi / abs(d.imag):.3g} {ir.variables.get('time_step').units or 'time units'}" \
        if abs(d.imag) > 1e-9 else ""
    lines.append(f"Eigenvalues: {', '.join(fmt(complex(e)) for e in res.eigenvalues)} per "
                 f"time unit. The equilibrium is {verdict.upper()}"
                 + (" (linearly: neither attracting nor repelling)" if verdict == "neutral"
                    else "") + ": "
                 f"the dominant eigenvalue {fmt(d)} gives {kind}{per}.")
    ok = all(v > 0 for v in res.hurwitz_values)
    lines.append("Routh-Hurwitz: the Hurwitz determinants are "
                 + ", ".join(fmt(v) for v in res.hurwitz_values)
                 + (" - all positive, so every eigenvalue has a negative real part."
                    if ok else " - not all positive, so some eigenvalue has a non-negative "
                    "real part."))
    for lid, pol, real, g, val in res.loops:
        if lid.startswith("L"):
            continue
        lines.append(f"Loop {lid} ({'reinforcing' if pol == 'R' else 'balancing'}: "
                     f"{' -> '.join(real)}): gain {fmt(val)}"
                     + (f" per unit of the flow out of {rn[res.cut_stock]}"
                        if res.cut_stock and rn[res.cut_stock] in real else "") + ".")
    if res.G is not None:
        lines.append(
            f"Total reinforcing gain G = {fmt(res.G_value)} (reinforcing loops per unit the "
            f"balancing loop takes through {rn[res.cut_stock]}). "
            + ("G < 1: the loop needs outside money and settles; each unit of outside inflow "
               f"is multiplied by 1/(1-G) = {fmt(1 / (1 - res.G_value))}."
               if res.G_value < 1 else
               "G > 1: the loop runs away on its own (no outside money needed)."))
        for n, (expr, val) in res.thresholds.items():
            p0 = res.system.param_values[n]
            lines.append(f"  G = 1 when {rn[n]} = {fmt(val)} (baseline {fmt(p0)}).")
    for n, v in res.oscillation_bounds.items():
        if v is not None:
            lines.append(f"  The dominant mode {'stops' if abs(res.dominant.imag) > 1e-9 else 'starts'}"
                         f" oscillating when {rn[n]} crosses {fmt(v)} (baseline "
                         f"{fmt(res.system.param_values[n])}).")
    return lines


def _latex_name(n: str) -> str:
    return r"\mathit{" + n.replace("_", r"\_") + "}"


def _names(res: ClosedFormResult) -> tuple[ModelIR, dict, dict]:
    """The model, its Vensim names by py_name and the LaTeX symbol of each state and parameter."""
    ir = res.system.ir
    rn = {n: v.real_name for n, v in ir.variables.items()}
    names = {s: sp.Symbol(_latex_name(str(s))) for s in
             list(res.system.states) + list(res.system.params.values())}
    return ir, rn, names


def report_markdown(res: ClosedFormResult) -> str:
    """Markdown report of a closed-form analysis (formulas in LaTeX math)."""
    ir, rn, names = _names(res)

    def L(e):
        return sp.latex(sp.sympify(e).subs(names) if hasattr(e, "subs") else e)

    out = [f"# Stability of {ir.path.name}", "",
           f"Model hash (sha256): `{ir.sha256[:16]}`. Derived automatically from the model file "
           "by `aicarousel.stability` (sympy); nothing below was typed by hand.", "",
           "## In plain words", ""]
    out += [f"- {s.strip()}" for s in plain_words(res)]
    out += ["", "## Equilibrium", ""]
    for s in res.system.states:
        out.append(f"- {rn[s.name]}: $${L(res.equilibrium[s])}$$ = "
                   f"{fmt(res.equilibrium_values[s.name])}")
    out += ["", "## Jacobian at the equilibrium", "",
            "State order: " + ", ".join(rn[s] for s in res.system.state_names) + ".", "",
            f"$$J = {L(res.jacobian)}$$", "",
            "## Characteristic polynomial", "",
            f"$$p(\\lambda) = {L(sp.expand(sum(c * LAMBDA ** (len(res.charpoly_coeffs) - 1 - i) for i, c in enumerate(res.charpoly_coeffs))))}$$",
            "", "Eigenvalues at baseline: "
            + ", ".join(fmt(complex(e)) for e in res.eigenvalues) + ".", "",
            "## Routh-Hurwitz conditions (all must be > 0)", ""]
    for k, (h, v) in enumerate(zip(res.hurwitz, res.hurwitz_values), 1):
        out.append(f"- $\\Delta_{k} = {L(h)}$ = {fmt(v)} ({'holds' if v > 0 else 'FAILS'})")
    out += ["", "## Feedback loops and gains", "",
            "| loop | polarity | variables | gain (closed form) | gain |", "|---|---|---|---|---|"]
    for lid, pol, real, g, val in res.loops:
        out.append(f"| {lid} | {pol} | {' -> '.join(real)} | "
                   f"{'$' + L(g) + '$' if g is not None else '-'} | {fmt(val)} |")
    if res.G is not None:
        out += ["", f"Total gain $G = {L(res.G)}$ = {fmt(res.G_value)}; multiplier "
                f"$1/(1-G)$ = {fmt(1 / (1 - res.G_value))}.", "",
                "## Thresholds", "", "| parameter | baseline | G = 1 at (closed form) | value | "
                "stability lost at (numeric) | oscillation switches at (numeric) |",
                "|---|---|---|---|---|---|"]
        for n in res.system.param_names:
            if n not in res.thresholds and res.oscillation_bounds.get(n) is None:
                continue
            expr, val = res.thresholds.get(n, (None, None))
            out.append(f"| {rn[n]} | {fmt(res.system.param_values[n])} | "
                       f"{'$' + L(expr) + '$' if expr is not None else '-'} | {fmt(val)} | "
                       f"{fmt(res.stability_bounds.get(n))} | "
                       f"{fmt(res.oscillation_bounds.get(n))} |")
    return "\n".join(out) + "\n"


def report_latex(res: ClosedFormResult) -> str:
    """LaTeX fragment (no preamble) of a closed-form analysis, for \\input in a paper."""
    ir, rn, names = _names(res)

    def L(e):
        return sp.latex(sp.sympify(e).subs(names))

    from aicarousel.tables import latex_escape as esc

    out = [f"% Stability of {esc(ir.path.name)} (model sha256 {ir.sha256[:16]}), "
           "generated by aicarousel.stability; do not edit.",
           r"\paragraph{Equilibrium.}", r"\begin{align*}"]
    out += [f"{_latex_name(s.name)}^* &= {L(res.equilibrium[s])} "
            f"= {fmt(res.equilibrium_values[s.name])}\\\\" for s in res.system.states]
    out += [r"\end{align*}", r"\paragraph{Jacobian.}", r"\[", f"J = {L(res.jacobian)}", r"\]",
            r"\paragraph{Characteristic polynomial.}", r"\[",
            f"p(\\lambda) = {L(sp.expand(sum(c * LAMBDA ** (len(res.charpoly_coeffs) - 1 - i) for i, c in enumerate(res.charpoly_coeffs))))}",
            r"\]", "Eigenvalues at baseline: "
            + ", ".join(f"${fmt(complex(e))}$" for e in res.eigenvalues) + ".",
            r"\paragraph{Routh--Hurwitz conditions.}", r"\begin{align*}"]
    out += [f"\\Delta_{k} &= {L(h)} = {fmt(v)} > 0\\\\"
            for k, (h, v) in enumerate(zip(res.hurwitz, res.hurwitz_values), 1)]
    out += [r"\end{align*}"]
    if res.G is not None:
        out += [r"\paragraph{Loop gain.}", r"\[", f"G = {L(res.G)} = {fmt(res.G_value)}", r"\]",
                r"\begin{tabular}{lrr}", r"\hline parameter & baseline & $G=1$ at\\ \hline"]
        out += [f"{esc(rn[n])} & {fmt(res.system.param_values[n])} & {fmt(v)}\\\\"
                for n, (e, v) in res.thresholds.items()]
        out += [r"\hline", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def baseline_markdown(b: BaselineResult, ir: ModelIR) -> str:
    """Markdown report of :func:`analyse_along_baseline`."""
    out = [f"# {ir.path.name} along its baseline run", "",
           f"Model hash (sha256): `{ir.sha256[:16]}`.", "",
           f"- Equilibrium: {b.equilibrium}.", f"- Growth: {b.balanced_growth}.", "",
           "## Dominant eigenvalue of the Jacobian (finite differences on the sympy RHS)", "",
           "| time | dominant eigenvalue (1/time) | most involved stock |", "|---|---|---|"]
    step = max(1, int(round(1.0 / (b.time[1] - b.time[0])))) if len(b.time) > 1 else 1
    for k in range(0, len(b.time), step):
        out.append(f"| {b.time[k]:g} | {fmt(complex(b.dominant[k]))} | {b.dominant_stock[k]} |")
    out += ["", "## Named loop gains over time", "",
            "Gain of the shortest loop through the named loop's key variables that is active "
            "(every link gain non-zero) at that time; stocks count by their residence time, "
            "pure integrators (cash) over one time unit; 0 = no active loop.", "",
            "| time | " + " | ".join(b.loop_gains) + " |", "|---|" + "---|" * len(b.loop_gains)]
    for i, t in enumerate(b.loop_times):
        out.append(f"| {t:g} | " + " | ".join(
            ("0" if v[i] is None else f"{v[i]:.3g} ({b.loop_polarity[k][i]})")
            for k, v in b.loop_gains.items()) + " |")
    out += ["", "Stock growth rates over the last quarter of the run (1/time):", ""]
    out += [f"- {k}: {fmt(v, 3)}" for k, v in b.growth_rates.items()]
    return "\n".join(out) + "\n"
