"""The model's comment tags: the one parser.

A variable's comment (Vensim documentation field) may start with a tag that says what the
variable is in the accounts. The tags are:

``[flow: A -> B]``
    a money flow ($B/Year) that leaves sector ``A`` and enters sector ``B``;
``[cash: X]``
    the cash stock of loop sector ``X`` (a sector that has a cash stock is a *loop sector*;
    every other sector named in a flow tag belongs to the Rest of World);
``[claim: D -> C]``
    a financial claim stock: a liability of debtor ``D`` and an asset of creditor ``C``, at
    book value;
``[real: X]``
    a real (non-financial) asset of ``X`` at book value;
``[memo]``
    an off-balance-sheet commitment (shown below the balance sheet, never summed);
``[stock]``
    a stock that is not money and not on any balance sheet (compute, a revenue run rate, a
    market value); the tag only says that the stock was classified on purpose, and the accounts
    ignore it.

:func:`parse` reads a comment's tag; :func:`sectors` splits the ``A -> B`` body of a flow or
claim tag. Accounts (:mod:`aicarousel.accounts`), experiments, the model-structure analysis and
the tests read tags only through these two functions.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["KINDS", "ARROW_KINDS", "Tag", "parse", "sectors"]

#: Every tag kind, in the order of the module docstring.
KINDS = ("flow", "cash", "claim", "real", "memo", "stock")
#: Kinds whose body is ``<from sector> -> <to sector>``.
ARROW_KINDS = ("flow", "claim")

_TAG_RE = re.compile(r"^\s*\[(?P<kind>" + "|".join(KINDS) + r")\s*(?::\s*(?P<body>[^\]]*))?\]")
_ARROW_RE = re.compile(r"^\s*(?P<a>[^-][^>]*?)\s*->\s*(?P<b>.+?)\s*$")


@dataclasses.dataclass(frozen=True)
class Tag:
    """A comment's tag.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    body : str or None
        Text after the colon, stripped (``"A -> B"`` or a sector name); None when empty.
    """

    kind: str
    body: str | None

    @property
    def ends(self) -> tuple[str, str] | None:
        """``(from, to)`` of a flow or ``(debtor, creditor)`` of a claim; None when malformed."""
        return sectors(self.body)

    def __str__(self) -> str:
        return f"[{self.kind}: {self.body}]" if self.body else f"[{self.kind}]"


def parse(comment: str | None) -> Tag | None:
    """Read the tag at the start of a variable's comment.

    Parameters
    ----------
    comment : str or None
        The variable's comment (documentation) text.

    Returns
    -------
    Tag or None
        None when the comment does not start with one of :data:`KINDS` in brackets.
    """
    m = _TAG_RE.match(comment or "")
    if not m:
        return None
    return Tag(m.group("kind"), (m.group("body") or "").strip() or None)


def sectors(body: str | None) -> tuple[str, str] | None:
    """Split a ``"A -> B"`` tag body into its two sector names.

    Returns
    -------
    (str, str) or None
        The stripped sector names; None when the body is not of that form.
    """
    m = _ARROW_RE.match(body or "")
    if not m:
        return None
    return m.group("a").strip(), m.group("b").strip()
