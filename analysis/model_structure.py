"""Stock-level causal structure of the carousel model, for the causal loop diagram.

Writes ``results/model_structure.json`` (stocks, influences with polarity, named loops), built
by :mod:`aicarousel.model_structure` from the model file; read by
``figures/fig_causal_loop_diagram.py``.

Usage: ``python analysis/model_structure.py [--model MDL] [--output JSON]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aicarousel import paths
from aicarousel.model_structure import build, write_json

__all__ = ["PRODUCES", "build", "write_json", "main"]

#: Results this script writes (read by figures/build.py to order the build).
PRODUCES = ["results/model_structure.json"]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default models/ai_carousel.mdl)")
    ap.add_argument("--output", default=None, help="JSON file (default results/model_structure.json)")
    args = ap.parse_args(argv)
    data = build(Path(args.model) if args.model else None)
    out = Path(args.output) if args.output else paths.RESULTS_DIR / "model_structure.json"
    write_json(data, out)
    print(f"wrote {paths.relative_to_root(out)}: {len(data['nodes'])} nodes, {len(data['edges'])} "
          f"influences, loops {', '.join(l['code'] + ':' + l['polarity'] for l in data['loops'])}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
