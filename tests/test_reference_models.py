"""Every shared test model the engines claim, against PySD: the IR's reference evaluator and
the ensemble give PySD's numbers to a relative 1e-12 on every saved step (the comparison with
the expected outputs, rtol = atol = 1e-5, is in test_ir and test_ensemble; the sympy system's
RHS against PySD's ddt() in test_symbolic). ``analysis/engine_coverage.py`` prints the counts
supported / PySD-supported / total."""

from __future__ import annotations

import shutil

import pytest

from engines import compare_all
from reference_models import REFUSED, TM, model_files, supported_models


@pytest.mark.skipif(not TM.is_dir(), reason="shared test models not available")
@pytest.mark.parametrize("rel", supported_models())
def test_engines_equal_pysd_on_shared_models(rel, tmp_path):
    src = TM / rel
    for f in src.parent.iterdir():  # the model with whatever it reads beside it
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    diffs = compare_all(tmp_path / src.name, tmp_path, symbolic=False)
    bad = {k: v[:3] for k, v in diffs.items() if v}
    assert not bad, bad


@pytest.mark.skipif(not TM.is_dir(), reason="shared test models not available")
def test_every_shared_model_is_claimed_or_refused():
    """The lists are current: each refused model exists, and the count is printed."""
    files = model_files()
    stale = sorted(set(REFUSED) - set(files))
    assert not stale, f"REFUSED lists models that are not in the shared suite: {stale}"
    print(f"engines claim {len(supported_models())} of {len(files)} shared model files "
          f"({len(REFUSED)} refused with the feature named)")
    assert len(supported_models()) + len(REFUSED) == len(files)
