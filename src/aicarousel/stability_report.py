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

__all__ = ["fmt", "plain_words", "report_markdown", "report_latex", "baseline_markdown",
           "reduced_plain_words", "reduced_markdown", "reduced_latex"]



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


# --------------------------------------------------------------------------------------------
# The carousel's reduced model (aicarousel.reduce.closed_forms)
# --------------------------------------------------------------------------------------------
def reduced_plain_words(cf) -> list[str]:
    """The closed forms of the reduced model (:class:`aicarousel.reduce.ClosedForms`) in words."""
    lin = cf.system
    rn = lin.real_names
    eig = cf.eigenvalues
    d = complex(eig[np.argmax(eig.real)])
    lines = [f"Reduced model of the reinforcing loops, derived from {lin.source}: "
             f"{len(lin.stocks)} stocks, {len(lin.links)} links (symbols L1-L{len(lin.links)}: "
             "link gains; a_s: each stock's own rate).",
             "Equilibrium (everything off the loops frozen at the reference): "
             + ", ".join(f"{rn[s]} = {fmt(v)}" for s, v in cf.equilibrium.items()) + ".",
             f"Eigenvalues: {', '.join(fmt(complex(e)) for e in eig)} per year. The equilibrium "
             f"is {cf.verdict.upper()}: the dominant eigenvalue {fmt(d)} gives "
             + ("monotonic growth" if d.real > 0 and abs(d.imag) < 1e-9 else
                "a growing oscillation" if d.real > 0 else
                "a damped oscillation" if abs(d.imag) > 1e-9 else "monotonic decay") + ".",
             "Routh-Hurwitz: the Hurwitz determinants are " + ", ".join(fmt(h) for h in cf.hurwitz)
             + (" - all positive, so every eigenvalue has a negative real part."
                if all(h > 0 for h in cf.hurwitz) else
                " - not all positive, so some eigenvalue has a non-negative real part."),
             f"Open-loop gain G = {fmt(cf.G_value)} (1 - det(I - A), A the stock-to-stock gain "
             "matrix of the loops)"
             + (f": each unit of outside money is multiplied by 1/(1-G) = "
                f"{fmt(1 / (1 - cf.G_value))}." if cf.G_value < 1 else
                ": above 1, the loops grow on their own.")]
    for s, thr in cf.thresholds.items():
        if thr is None:
            continue
        lines.append(f"  G = 1 when {cf.describe(s)} ({s}) = {fmt(thr)} (reference "
                     f"{fmt(cf.values[s])}); stability is lost at {fmt(cf.stability_bounds.get(s))}.")
    none = [str(s) for s, thr in cf.thresholds.items() if thr is None]
    if none:
        lines.append(f"  No G = 1 threshold of the same sign (G stays on one side of 1): "
                     f"{', '.join(none)}.")
    same = [s for s, thr in cf.thresholds.items() if thr is not None
            and cf.stability_bounds.get(s) is not None
            and abs(cf.stability_bounds[s] / thr - 1) < 1e-6]
    osc = [s for s, v in cf.oscillation.items() if v]
    lines.append(
        ("J is a Metzler matrix (every link reinforces), so the dominant eigenvalue is real "
         "and " if cf.metzler else "")
        + f"stability is lost exactly at G = 1 for {len(same)} of the "
        f"{sum(t is not None for t in cf.thresholds.values())} thresholds (1e-6 relative); the "
        f"dominant eigenvalue is complex for {len(osc)} of {len(cf.oscillation)} parameters "
        "anywhere from 1/100 to 100 times their value: in the derived model G < 1 is "
        + ("necessary and sufficient for stability (no cash-adjustment oscillation: Lab's cash "
           "is not on the loops active at the reference)."
           if len(same) == sum(t is not None for t in cf.thresholds.values()) and not osc
           else "necessary but not sufficient for stability."))
    return lines


def reduced_markdown(cf) -> str:
    """Markdown report of the reduced model's closed forms (formulas in LaTeX math)."""
    lin = cf.system
    rn = lin.real_names
    L = sp.latex
    out = [f"# Stability of the reduced model ({lin.source})", "",
           "Derived automatically from the full model by `aicarousel.reduce` (sympy); nothing "
           "below was typed by hand. Regenerate the model with "
           "`aicarousel loopgain --write-reduced`.", "", "## In plain words", ""]
    out += [f"- {s.strip()}" for s in reduced_plain_words(cf)]
    out += ["", "## Symbols", "", "| symbol | link or own rate | value at the reference |",
            "|---|---|---|"]
    out += [f"| ${L(s)}$ | {cf.describe(s)} | {fmt(v)} |" for s, v in cf.values.items()]
    out += ["", "## Jacobian", "", "State order: " + ", ".join(rn[s] for s in lin.stocks) + ".",
            "", f"$$J = {L(cf.jacobian)}$$", "", f"$$\\det J = {L(cf.det_jacobian)}$$", "",
            "## Equilibrium", "",
            "$s^* = s_{ref} - J^{-1} f_{ref}$ ($f_{ref}$: net flows at the reference):", ""]
    out += [f"- {rn[s]} = {fmt(cf.equilibrium[s])}" for s in lin.stocks if s in cf.equilibrium]
    out += ["", "## Characteristic polynomial", "",
            f"$$p(\\lambda) = {L(cf.charpoly)}$$", "",
            "## Routh-Hurwitz conditions (all must be > 0)", ""]
    for k, v in enumerate(cf.hurwitz, 1):
        sym = (f"$\\Delta_{k} = {L(cf.hurwitz_symbolic[k - 1])}$"
               if k <= len(cf.hurwitz_symbolic) else f"$\\Delta_{k}$")
        out.append(f"- {sym} = {fmt(v)} ({'holds' if v > 0 else 'FAILS'})")
    out += ["", "## Open-loop gain and thresholds", "", f"$$G = {L(cf.G)}$$", "",
            f"G = {fmt(cf.G_value)} at the reference.", "",
            "| symbol | link or own rate | reference | G = 1 at | stability lost at | "
            "complex dominant eigenvalue in 1/100-100x |", "|---|---|---|---|---|---|"]
    for s, thr in cf.thresholds.items():
        out.append(f"| ${L(s)}$ | {cf.describe(s)} | {fmt(cf.values[s])} | {fmt(thr)} | "
                   f"{fmt(cf.stability_bounds.get(s))} | "
                   f"{'yes' if cf.oscillation.get(s) else 'no'} |")
    return "\n".join(out) + "\n"


def reduced_latex(cf) -> str:
    """LaTeX fragment (no preamble) of the reduced model's closed forms."""
    from aicarousel.tables import latex_escape as esc

    lin = cf.system
    out = [f"% Stability of the reduced model ({esc(lin.source)}), generated by "
           "aicarousel.reduce; do not edit.",
           r"\paragraph{Jacobian.}", r"\[", f"J = {sp.latex(cf.jacobian)}", r"\]",
           r"\paragraph{Characteristic polynomial.}", r"\[",
           f"p(\\lambda) = {sp.latex(cf.charpoly)}", r"\]",
           "Eigenvalues at the reference: "
           + ", ".join(f"${fmt(complex(e))}$" for e in cf.eigenvalues) + ".",
           r"\paragraph{Routh--Hurwitz conditions.}", r"\begin{align*}"]
    out += [f"\\Delta_{k} &= {fmt(v)}\\\\" for k, v in enumerate(cf.hurwitz, 1)]
    out += [r"\end{align*}", r"\paragraph{Loop gain.}", r"\[",
            f"G = {sp.latex(cf.G)} = {fmt(cf.G_value)}", r"\]",
            r"\begin{tabular}{llrr}", r"\hline symbol & link & reference & $G=1$ at\\ \hline"]
    out += [f"${sp.latex(s)}$ & {esc(cf.describe(s))} & {fmt(cf.values[s])} & {fmt(t)}\\\\"
            for s, t in cf.thresholds.items() if t is not None]
    out += [r"\hline", r"\end{tabular}"]
    return "\n".join(out) + "\n"
