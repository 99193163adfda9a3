"""``aicarousel doc``: every model variable with its kind, units and comment."""

from __future__ import annotations

import argparse

from . import add_model


def register(subparsers) -> None:
    """Add the ``doc`` subcommand."""
    p = subparsers.add_parser(
        "doc", help="document every model variable (units, kind, comment)",
        description="Print every variable of the model with its kind, units and comment "
                    "(taken from the model file).")
    p.add_argument("--format", choices=["text", "markdown", "csv"], default="text",
                   help="output format (default text)")
    add_model(p)
    p.set_defaults(func=_main)


def _text(value) -> str:
    """A doc cell as text: '' for a missing value (PySD leaves Type/Units of 'Time' empty)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _kind(row) -> str:
    kind = _text(row["Type"]).lower() or "time"
    sub = _text(row["Subtype"])
    return kind + ("" if sub in ("", "Normal") else f" ({sub.lower()})")


def _main(args: argparse.Namespace) -> int:
    from ..model import load

    doc = load(args.model).doc
    doc = doc.sort_values("Real Name", key=lambda s: s.astype(str).str.lower())
    cols = ["Real Name", "Type", "Subtype", "Units", "Limits", "Comment"]
    if args.format == "csv":
        print(doc[cols].to_csv(index=False), end="")
        return 0
    if args.format == "markdown":
        print("| name | kind | units | comment |\n|---|---|---|---|")
        for _, r in doc.iterrows():
            c = " ".join(_text(r["Comment"]).split()).replace("|", "\\|")
            print(f"| {_text(r['Real Name'])} | {_kind(r)} | {_text(r['Units'])} | {c} |")
        return 0
    for _, r in doc.iterrows():
        print(f"{_text(r['Real Name'])}  [{_text(r['Units'])}]  {_kind(r)}")
        if _text(r["Comment"]):
            print(f"    {_text(r['Comment'])}")
    return 0
