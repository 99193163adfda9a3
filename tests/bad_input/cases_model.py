"""Rows for hostile or broken model files: `--model FILE` of run, doc, stability, loops.

Each file is written into the sandbox by ``setup``; the command must answer in one line naming
the cause (not an internal exception), execute nothing from the file, and touch no file but
its own output.
"""

from __future__ import annotations

import os
from pathlib import Path

from aicarousel import ensemble, paths
from aicarousel.errors import ModelFileError, UnsupportedFeatureError

from .harness import Case

TEACUP_XMILE = paths.ROOT.parent / "shared" / "test-models" / "samples" / "teacup" / "teacup.xmile"
MARKER = "MARKER"


def mdl(comment: str = "", units: str = "Dmnl", extra: str = "", y: str = "0.1 * x") -> str:
    """A tiny valid Vensim model (x grows 10 %/year) with hooks for hostile text."""
    return ("{UTF-8}\nx = INTEG( y, 1)\n\t~\t" + units + "\n\t~\t" + comment + "\n\t|\n\n"
            "y = " + y + "\n\t~\t1/Year\n\t~\t|\n\n" + extra +
            "INITIAL TIME = 0\n\t~\tYear\n\t~\t|\nFINAL TIME = 1\n\t~\tYear\n\t~\t|\n"
            "TIME STEP = 0.25\n\t~\tYear\n\t~\t|\nSAVEPER = TIME STEP\n\t~\tYear\n\t~\t|\n")


def write(name: str, content: str | bytes):
    """setup: write ``content`` to ``sandbox/name`` (``{tmp}`` in content = the sandbox)."""
    def setup(sb: Path) -> None:
        p = sb / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content.replace("{tmp}", str(sb)), encoding="utf-8")
        else:
            p.write_bytes(content)
    return setup


def payload(sb_marker: str = "{tmp}/" + MARKER) -> str:
    return f'open("{sb_marker}", "w").write("pwned")'


def no_marker(sb: Path, status: int, text: str) -> None:
    assert not (sb / MARKER).exists(), "the model file executed code"


def teacup_cut(n: int):
    def setup(sb: Path) -> None:
        (sb / "cut.xmile").write_bytes(TEACUP_XMILE.read_bytes()[:n])
    return setup


def _dir(sb: Path) -> None:
    (sb / "folder.mdl").mkdir()


def _fifo(sb: Path) -> None:
    os.mkfifo(sb / "pipe.mdl")


def _huge(sb: Path) -> None:
    with open(sb / "huge.mdl", "wb") as fh:  # sparse: 40 MB without using the disk
        fh.truncate(40 * 2**20)
        fh.seek(0)
        fh.write(b"{UTF-8}\n")


def _symlink_dir(sb: Path) -> None:
    (sb / "d").mkdir()
    (sb / "link.mdl").symlink_to(sb / "d")


RUN = ["run", "--output", "{tmp}/r.nc", "--model"]
DOC = ["doc", "--model"]

CASES = [
    # --- not a model at all
    Case("loopgain-model-no-loops", argv=["loopgain", "--model", "{tmp}/noloop.mdl"],
         setup=write("noloop.mdl", mdl(y="0.1")), message="has no feedback loops"),
    Case("dominance-model-no-loops", argv=["dominance", "--model", "{tmp}/noloop.mdl"],
         setup=write("noloop.mdl", mdl(y="0.1")), message="has no feedback loops"),
    Case("model-empty", argv=DOC + ["{tmp}/empty.mdl"], setup=write("empty.mdl", ""),
         message="is empty"),
    Case("model-whitespace-only", argv=RUN + ["{tmp}/blank.mdl"],
         setup=write("blank.mdl", " \n\t\n"), message="is empty"),
    Case("model-binary", argv=RUN + ["{tmp}/bin.mdl"],
         setup=write("bin.mdl", bytes(range(256)) * 4), message="binary file"),
    Case("model-png-renamed", argv=DOC + ["{tmp}/fig.mdl"],
         setup=write("fig.mdl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40),
         message="binary file"),
    Case("model-latin1", argv=RUN + ["{tmp}/latin.mdl"],
         setup=write("latin.mdl", mdl(comment="Caf\u00e9 costs").encode("latin-1")),
         message="not UTF-8 text"),
    Case("model-utf16", argv=DOC + ["{tmp}/u16.mdl"],
         setup=write("u16.mdl", mdl().encode("utf-16")), message="UTF-16"),
    Case("model-nul-in-comment", argv=DOC + ["{tmp}/nul.mdl"],
         setup=write("nul.mdl", mdl(comment="a\x00b")), message="binary file"),
    Case("model-is-directory", argv=RUN + ["{tmp}/folder.mdl"], setup=_dir,
         message="not a regular file"),
    Case("model-is-fifo", argv=DOC + ["{tmp}/pipe.mdl"], setup=_fifo,
         message="not a regular file", timeout=60, subprocess=True),
    Case("model-symlink-to-directory", argv=DOC + ["{tmp}/link.mdl"], setup=_symlink_dir,
         message="not a regular file"),
    Case("model-missing", argv=RUN + ["{tmp}/nope.mdl"], message="not found"),
    Case("model-wrong-suffix", argv=DOC + ["{tmp}/m.txt"], setup=write("m.txt", mdl()),
         message="expected a Vensim .mdl"),
    Case("model-huge", argv=DOC + ["{tmp}/huge.mdl"], setup=_huge,
         message="model files above 32 MB are refused"),
    Case("model-only-encoding-tag", argv=DOC + ["{tmp}/tag.mdl"],
         setup=write("tag.mdl", "{UTF-8}\n"), message="tag.mdl"),
    # --- XMILE
    Case("xmile-truncated", argv=RUN + ["{tmp}/cut.xmile"], setup=teacup_cut(900),
         message="cut short or not well-formed"),
    Case("xmile-truncated-in-header", argv=DOC + ["{tmp}/cut.xmile"], setup=teacup_cut(200),
         message="cut short or not well-formed"),
    Case("xmile-not-xml", argv=DOC + ["{tmp}/t.xmile"], setup=write("t.xmile", mdl()),
         message="not an XMILE model"),
    Case("xmile-html-root", argv=DOC + ["{tmp}/t.xmile"],
         setup=write("t.xmile", "<html><body>hi</body></html>"), message="not <xmile>"),
    Case("xmile-no-model", argv=DOC + ["{tmp}/t.xmile"],
         setup=write("t.xmile", '<xmile version="1.0"><sim_specs><start>0</start><stop>1'
                                '</stop><dt>1</dt></sim_specs></xmile>'),
         message="no <model>"),
    Case("xmile-doctype-entity", argv=RUN + ["{tmp}/xxe.xmile"],
         setup=write("xxe.xmile", '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM '
                                  '"file:///etc/passwd">]>\n' + TEACUP_XMILE.read_text()
                     .split("\n", 1)[1].replace("Heat Loss to Room</doc>", "&e;</doc>")),
         message="DOCTYPE/ENTITY"),
    Case("xmile-billion-laughs", argv=DOC + ["{tmp}/lol.xmile"],
         setup=write("lol.xmile", '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaa">'
                                  + "".join(f'<!ENTITY {c} "&{p};&{p};&{p};&{p};">'
                                            for p, c in zip("abcdefgh", "bcdefghi"))
                                  + ']>\n<xmile><doc>&i;</doc></xmile>'),
         message="DOCTYPE/ENTITY"),
    # --- broken Vensim
    Case("mdl-syntax-error-real-line", argv=DOC + ["{tmp}/bad.mdl"],
         # the bad fragment "x * (2" also sits in a comment on line 4: report line 7
         setup=write("bad.mdl", mdl(comment="y = x * (2 was a typo once", y="x * (2")),
         message="bad.mdl:7: cannot parse"),
    Case("mdl-syntax-error-in-units-too", argv=RUN + ["{tmp}/bad.mdl"],
         # the fragment first appears in x's units field (line 3), the equation is line 7
         setup=write("bad.mdl", mdl(units="x +* 2", y="x +* 2")),
         message="bad.mdl:7: cannot parse"),
    Case("mdl-truncated", argv=DOC + ["{tmp}/cut.mdl"], setup=write("cut.mdl", mdl()[:60]),
         message="cut.mdl"),
    Case("mdl-unbalanced-parens", argv=RUN + ["{tmp}/p.mdl"],
         setup=write("p.mdl", mdl(y="((0.1 * x)")), message="p.mdl:7: cannot parse"),
    Case("mdl-unsupported-function", argv=RUN + ["{tmp}/npv.mdl"],
         setup=write("npv.mdl", mdl(y="NPV(x, 0.1, 0, 1)")), message="NPV"),
    Case("mdl-deep-nesting", argv=DOC + ["{tmp}/deep.mdl"],
         setup=write("deep.mdl", mdl(y="(" * 3000 + "x" + ")" * 3000)), message="deep.mdl"),
    Case("mdl-external-data-missing", argv=RUN + ["{tmp}/xls.mdl"],
         setup=write("xls.mdl", mdl(extra="z = GET XLS CONSTANTS('in.xlsx', 'tab', 'A1')\n"
                                          "\t~\tDmnl\n\t~\t|\n\n")),
         message="external data files"),
    Case("ir-binary-model", argv=["loops", "--model", "{tmp}/bin.mdl"],
         setup=write("bin.mdl", b"\x00\x01\x02" * 100), message="binary file"),
    Case("ir-truncated-xmile", argv=["stability", "--model", "{tmp}/cut.xmile"],
         setup=teacup_cut(900), message="cut short or not well-formed"),
    Case("ir-syntax-error-real-line", argv=["loops", "--model", "{tmp}/bad.mdl"],
         setup=write("bad.mdl", mdl(comment="y = x * (2 was a typo once", y="x * (2")),
         message="bad.mdl:7: cannot be parsed"),
    Case("engine-unsupported-feature", raises=UnsupportedFeatureError,
         call=lambda sb: ensemble.compile_model(sb / "dl.mdl"),
         setup=write("dl.mdl", mdl().replace("SAVEPER = TIME STEP", "SAVEPER = 0.25 + 0 * Time")),
         message="depends on Time"),
    Case("api-load-missing-model", raises=ModelFileError,
         call=lambda sb: __import__("aicarousel.model").model.load(sb / "none.xmile"),
         message="not found"),
    # --- hostile text: neutralised (runs, executes nothing) or refused
    Case("mdl-comment-code", argv=RUN + ["{tmp}/evil.mdl"], status=0, owned=("r.nc",),
         setup=write("evil.mdl", mdl(comment='"""\\' + payload() + '\\"""')), check=no_marker),
    Case("mdl-comment-triple-single-quotes", argv=RUN + ["{tmp}/evil.mdl"], status=0,
         owned=("r.nc",), setup=write("evil.mdl", mdl(comment="'''\\" + payload() + "\\'''")),
         check=no_marker),
    Case("mdl-comment-escapes", argv=DOC + ["{tmp}/evil.mdl"], status=0,
         setup=write("evil.mdl", mdl(comment='\\x22\\x22\\x22 \\N{QUOTATION MARK}\\u0022 "\\"')),
         check=no_marker),
    Case("mdl-units-code", argv=RUN + ["{tmp}/evil.mdl"], status=0, owned=("r.nc",),
         setup=write("evil.mdl", mdl(units="Dmnl'\"\"\" + " + payload() + " + \"\"\"'")),
         check=no_marker),
    Case("mdl-quoted-name-code", argv=DOC + ["{tmp}/evil.mdl"], status=0,
         setup=write("evil.mdl", mdl().replace("x = INTEG", '"x\'); ' + payload().replace('"', "'")
                                                + ' #" = INTEG')
                     .replace("0.1 * x", '0.1 * "x\'); ' + payload().replace('"', "'") + ' #"')),
         check=no_marker),
    Case("mdl-get-xls-escaped-quote", argv=RUN + ["{tmp}/evil.mdl"],
         setup=write("evil.mdl", mdl(extra="z = GET XLS CONSTANTS('a\\x27 and " + payload() +
                                     " and \\x27', 'tab', 'A1')\n\t~\tDmnl\n\t~\t|\n\n")),
         message="refused", check=no_marker),
    Case("mdl-get-direct-backslash", argv=RUN + ["{tmp}/evil.mdl"],
         setup=write("evil.mdl", mdl(extra="z = GET DIRECT CONSTANTS('a\\\\', ', " + payload()
                                     + ", ', 'A1')\n\t~\tDmnl\n\t~\t|\n\n")),
         message="evil.mdl", check=no_marker),
    Case("mdl-macro-comment-code", argv=RUN + ["{tmp}/evil.mdl"], status=0, owned=("r.nc",),
         setup=write("evil.mdl", "{UTF-8}\n:MACRO: EXPR MACRO(input, parameter)\n"
                     "EXPR MACRO = input * parameter\n\t~\tinput\n\t~\t\"\"\"\\" + payload() +
                     "\\\"\"\"\n\t|\n\n:END OF MACRO:\n" + mdl(
                         extra="w = EXPR MACRO(y, 2)\n\t~\tDmnl\n\t~\t|\n\n")[len("{UTF-8}\n"):]),
         check=no_marker),
    Case("mdl-lookup-range-code", argv=RUN + ["{tmp}/evil.mdl"],
         setup=write("evil.mdl", mdl(extra="z = WITH LOOKUP(y, ([(" + payload() +
                                     ",0)-(10,10)], (0,0),(10,10)))\n\t~\tDmnl\n\t~\t|\n\n")),
         message="only numbers are allowed", check=no_marker),
    Case("ir-lookup-table-range-code", argv=["loops", "--model", "{tmp}/evil.mdl"],
         setup=write("evil.mdl", mdl(extra="tab([(" + payload() + ",0)-(10,10)], (0,0),(10,10))"
                                     "\n\t~\tDmnl\n\t~\t|\n\n")),
         message="only numbers are allowed", check=no_marker),
    Case("xmile-doc-code", argv=RUN + ["{tmp}/evil.xmile"], status=0, owned=("r.nc",),
         setup=write("evil.xmile", TEACUP_XMILE.read_text().replace(
             "<doc>Heat Loss to Room</doc>",
             "<doc>&quot;&quot;&quot;\\" + payload().replace('"', "&quot;") +
             "\\&quot;&quot;&quot;</doc>")),
         check=no_marker),
    Case("xmile-units-code", argv=DOC + ["{tmp}/evil.xmile"], status=0,
         setup=write("evil.xmile", TEACUP_XMILE.read_text().replace(
             "<eqn>70</eqn>", "<eqn>70</eqn><units>'''&quot;&quot;&quot;\\" +
             payload().replace('"', "&quot;") + "</units>")),
         check=no_marker),
    Case("doc-core-loop", argv=DOC + ["{root}/models/core_loop_derived.mdl"], status=0),
]
