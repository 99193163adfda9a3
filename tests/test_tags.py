"""The one parser of the model's comment tags (aicarousel.tags)."""

import pytest

from aicarousel import tags
from aicarousel import paths
from aicarousel.ir import build_ir


@pytest.mark.parametrize("comment, kind, body, ends", [
    ("[flow: Lab -> Cloud] Lab pays Cloud.", "flow", "Lab -> Cloud", ("Lab", "Cloud")),
    ("  [claim:Cloud->Lenders]", "claim", "Cloud->Lenders", ("Cloud", "Lenders")),
    ("[cash: Lab] Lab's cash", "cash", "Lab", None),
    ("[real: Cloud]", "real", "Cloud", None),
    ("[memo] backlog", "memo", None, None),
    ("[stock] compute", "stock", None, None),
])
def test_parse_reads_every_kind(comment, kind, body, ends):
    tag = tags.parse(comment)
    assert (tag.kind, tag.body) == (kind, body)
    if kind in tags.ARROW_KINDS:
        assert tag.ends == ends


@pytest.mark.parametrize("comment", ["", None, "Lab pays [flow: A -> B]", "[R1] loop",
                                     "[flows: A -> B]"])
def test_parse_ignores_what_is_not_a_leading_tag(comment):
    assert tags.parse(comment) is None


@pytest.mark.parametrize("body", ["Lab Cloud", "-> Cloud", "", None])
def test_malformed_arrow_is_none(body):
    assert tags.sectors(body) is None


def test_every_bracket_tag_of_the_model_is_a_known_kind():
    # a typo such as [flwo: ...] would silently drop a flow from the accounts
    ir = build_ir(paths.MODEL_FILE)
    for v in ir.variables.values():
        c = (v.comment or "").lstrip()
        if c.startswith("[") and not c.startswith("[R") and not c.startswith("[B"):
            assert tags.parse(c) is not None, (v.real_name, c[:40])
