"""Stability map of the reduced model: simulated outcome over two link gains, sympy G = 1 curve.

Reads ``results/stability/stability_map.nc`` (written by ``analysis/stability_report.py``;
never simulates). Shading: outcome of a simulation of the reduced model derived from the
carousel (``models/core_loop_derived.mdl``) at each grid point (decay, damped oscillation,
growth, growing oscillation). Solid line: the closed-form threshold G = 1 of the reinforcing
loops R2 + R3; dashed line: where the dominant eigenvalue becomes complex (none on the derived
model: every link reinforces). Cross: the reference values (when inside the plotted range;
otherwise the legend gives them and says they lie off the map).
Output: ``figures/out/stability_map.{pdf,png}`` (single column).
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from aicarousel import plotting

#: Results this figure reads.
NEEDS = ["results/stability/stability_map.nc"]
LABELS = ["decay", "damped oscillation", "growth", "growing oscillation"]
COLORS = ["#DCEAF5", "#9CC3E0", "#EFA97A", "#C8553D"]


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    path = plotting.require(results / "stability" / "stability_map.nc",
                            "python analysis/stability_report.py")
    ds = xr.load_dataset(path)
    x, y = ds["x"].values, ds["y"].values
    fig, ax = plotting.figure("single", height=3.3)
    dx, dy = (x[1] - x[0]) / 2, (y[1] - y[0]) / 2
    ax.imshow(ds["outcome"].values, origin="lower", aspect="auto", interpolation="nearest",
              extent=(x[0] - dx, x[-1] + dx, y[0] - dy, y[-1] + dy),
              cmap=ListedColormap(COLORS), vmin=-0.5, vmax=3.5)
    ax.plot(x, ds["g1_y"].values, color="black", lw=1.2, label="G = 1 (sympy)")
    ax.contour(x, y, ds["eig_complex"].values.astype(float), levels=[0.5], colors="black",
               linestyles="--", linewidths=0.8)
    xb, yb = float(ds.attrs["x_baseline"]), float(ds.attrs["y_baseline"])
    inside = x[0] - dx <= xb <= x[-1] + dx and y[0] - dy <= yb <= y[-1] + dy
    if inside:
        ax.plot([xb], [yb], marker="x", color="black", ms=6, mew=1.5, ls="none")
    ax.set_xlim(x[0] - dx, x[-1] + dx)
    ax.set_ylim(y[0] - dy, y[-1] + dy)
    # long link names wrap instead of running off the figure
    ax.set_xlabel("\n".join(textwrap.wrap(plotting.axis_label(
        name=ds.attrs["x_name"], unit=ds.attrs["x_units"]), 48)))
    ax.set_ylabel("\n".join(textwrap.wrap(plotting.axis_label(
        name=ds.attrs["y_name"], unit=ds.attrs["y_units"]), 36)))
    present = sorted(set(np.unique(ds["outcome"].values).astype(int)))
    handles = [Patch(facecolor=COLORS[k], label=LABELS[k]) for k in present]
    handles += [plotting.plt.Line2D([], [], color="black", lw=1.2, label="G = 1 (sympy)")]
    if ds["eig_complex"].values.any():
        handles += [plotting.plt.Line2D([], [], color="black", lw=0.8, ls="--",
                                        label="complex eigenvalues")]
    handles += [plotting.plt.Line2D(
        [], [], color="black", marker="x", ls="none",
        label="reference values" if inside else
        f"reference ({xb:.3g}, {yb:.3g}), off the map")]
    fig.legend(handles=handles, fontsize=6, loc="lower center", ncol=2, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.set_layout_engine("tight", rect=(0, 0.14, 1, 1))
    prov = plotting.provenance(ds, scenario="core loop", source=",".join(NEEDS))
    plotting.savefig(fig, "stability_map", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
