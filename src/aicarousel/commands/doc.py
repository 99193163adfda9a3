"""``aicarousel doc``: every model variable with its kind, units and comment."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``doc`` subcommand."""
    p = subparsers.add_parser(
        "doc", help="document every model variable (units, kind, comment)",
        description="Print every variable of the model with its kind, units and comment "
                    "(taken from the model file).")
    p.add_argument("--format", choices=["text", "markdown", "csv"], default="text",
                   help="output format (default text)")
    p.add_argument("--model", default=None, metavar="MDL", help="model file (default models/ai_carousel.mdl)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from ..model import load

    doc = load(args.model).doc
    doc = doc.sort_values("Real Name", key=lambda s: s.str.lower())
    cols = ["Real Name", "Type", "Subtype", "Units", "Limits", "Comment"]
    if args.format == "csv":
        print(doc[cols].to_csv(index=False), end="")
        return 0
    if args.format == "markdown":
        print("| name | kind | units | comment |\n|---|---|---|---|")
        for _, r in doc.iterrows():
            c = str(r["Comment"] or "").replace("|", "\\|")
            print(f"| {r['Real Name']} | {r['Type'].lower()} | {r['Units'] or ''} | {c} |")
        return 0
    for _, r in doc.iterrows():
        kind = r["Type"].lower() + ("" if r["Subtype"] == "Normal" else f" ({r['Subtype'].lower()})")
        print(f"{r['Real Name']}  [{r['Units'] or ''}]  {kind}")
        if r["Comment"]:
            print(f"    {r['Comment']}")
    return 0
