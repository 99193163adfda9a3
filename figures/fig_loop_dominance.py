"""Loop dominance of the carousel: relative loop scores over time, baseline beside a stress.

Reads ``results/dominance/baseline.nc`` and ``results/dominance/funding_stop.nc`` (written by
``analysis/loop_dominance.py``; never simulates). Each named loop of
``models/named_loops.yaml`` is drawn as the sum of the relative scores (Loops That Matter) of
the loops found that pass through all its key variables, averaged over each quarter; the
strongest unnamed loop is drawn in grey. Positive: reinforcing, negative: balancing. Relative
scores are shares of the summed absolute scores of all loops found.
Output: ``figures/out/loop_dominance.{pdf,png}`` (double column).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import xarray as xr

from aicarousel import plotting
from aicarousel.dominance import window_mean

#: Results this figure reads.
NEEDS = ["results/dominance/baseline.nc", "results/dominance/funding_stop.nc"]
TITLES = {"baseline": "Baseline", "funding_stop": "Funding stop"}


def _families(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Named-loop id -> summed relative score of its member loops (per time)."""
    out: dict[str, np.ndarray] = {}
    named = [str(v) for v in ds["named"].values]
    ids = sorted({i for v in named for i in v.split(",") if i})
    for lid in ids:
        members = [k for k, v in enumerate(named) if lid in v.split(",")]
        out[lid] = ds["relative_score"].values[members].sum(axis=0)
    return out


def main(argv=None) -> int:
    """Draw the figure; return the exit status (2 when the results are missing)."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    files = [plotting.require(results / "dominance" / f"{s}.nc",
                              "python analysis/loop_dominance.py") for s in TITLES]
    fig, axes = plotting.figure("double", height=2.9, ncols=2, sharey=True)
    all_ids = set()
    dsets = [xr.load_dataset(f) for f in files]
    for ds in dsets:
        all_ids |= set(_families(ds))
    colors = dict(zip(sorted(all_ids), plotting.plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, ds, (key, title) in zip(axes, dsets, TITLES.items()):
        q = window_mean(ds, 0.25)
        t = q["time"].values + 0.125
        fam = _families(q)
        names = json.loads(ds.attrs.get("named_loops", "{}"))
        for lid in sorted(fam, key=lambda i: (i[0] != "R", i)):
            ax.plot(t, fam[lid], color=colors[lid], lw=1.1,
                    label=f"{lid} {names.get(lid, '')}".strip())
        unnamed = [k for k, v in enumerate(q["named"].values) if not str(v)]
        if unnamed:
            k = unnamed[int(np.argmax(np.abs(q["relative_score"].values[unnamed]).mean(axis=1)))]
            ax.plot(t, q["relative_score"].values[k], color="0.6", lw=0.8,
                    label=f"strongest unnamed ({str(q['polarity'].values[k])})")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{title} ({ds.attrs['loops_found']} loops found)", fontsize=8)
        plotting.year_axis(ax)
        ax.set_xlabel("Year")
    axes[0].set_ylabel("Relative loop score (1)")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, fontsize=6, loc="lower center", ncol=4,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    plotting.panel_letters(axes)
    fig.set_layout_engine("tight", rect=(0, 0.13, 1, 1))
    prov = plotting.provenance(dsets[0], scenario="baseline, funding_stop",
                               source=",".join(NEEDS))
    plotting.savefig(fig, "loop_dominance", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
