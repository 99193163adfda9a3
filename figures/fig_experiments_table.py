"""The comparison table of the experiments as a figure-ready LaTeX table.

Reads ``results/experiments_table.csv`` (written by ``analysis/experiments.py``;
never simulates) and writes ``figures/out/experiments_table.tex``: a ``table*``
with outcomes as rows and scenarios as columns (needs ``booktabs`` and
``graphicx``), the git commit and model hash in a comment line.
"""

from __future__ import annotations

import sys

from aicarousel import plotting
from aicarousel.atomic import write_text
from aicarousel.experiments import results_attrs, latex_table, load_table

#: Results this figure reads.
NEEDS = ["results/experiments_table.csv"]


def main(argv=None) -> int:
    """Write the table."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    table = load_table(plotting.require(results / "experiments_table.csv", "python analysis/experiments.py"))
    prov = plotting.provenance(results_attrs(results), scenario=",".join(table.index), source="results/experiments_table.csv")
    head = "% provenance: " + "; ".join(f"{k}={v}" for k, v in sorted(prov.items())) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "experiments_table.tex", head + latex_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
