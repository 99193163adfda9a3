"""Stock-flow-consistent accounts and money tracing (issue 6).

Tolerances: sums over origins and accounting residuals are checked to a relative 1e-9 (the
model's own Euler update is reproduced, so the true error is rounding, ~1e-13).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from aicarousel import accounts as A
from aicarousel import paths

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

RTOL = 1e-9
TINY = paths.TEST_DATA_DIR / "tiny_carousel.mdl"


@pytest.fixture(scope="module")
def baseline():
    """Accounts, run at every time step and trace of the carousel baseline."""
    return A.analyse()


@pytest.fixture(scope="module")
def stress():
    """The same for a stress case: outside funding stops early, revenue disappoints."""
    acc = A.read_accounts()
    t0, t1, _ = acc.time
    import pandas as pd
    stop = pd.Series([1.0, 1.0, 0.0, 0.0], index=[t0, t0 + 2.0, t0 + 2.0 + 1e-6, t1])
    return A.analyse({"Outside funding availability": stop, "AI demand multiplier": 0.5}, acc=acc)


def _cases(baseline, stress):
    return {"baseline": baseline, "stress": stress}


# ------------------------------------------------------------------------------------ structure

def test_tags_give_the_three_loop_sectors_and_the_rest_of_world(baseline):
    acc, _, _ = baseline
    assert acc.loop_sectors == ("Lab", "Cloud", "Chips")
    for s in ("End users", "Equity investors", "Lenders", "Suppliers"):
        assert s in acc.row_sectors
    for f in A.LOOP_FLOWS:
        assert acc.flow(f).source in acc.loop_sectors and acc.flow(f).target in acc.loop_sectors
    # a sector is an origin only through what it pays in: Suppliers (other compute providers
    # among them) pay Lab only the trade credit on unpaid bills and the bad debt they forgive
    assert {f.name for f in acc.flows if f.source == "Suppliers"} == {
        "Trade credit from other providers", "Other providers bad debt"}
    assert acc.origins[-2:] == (A.OPENING, A.OVERDRAFT)
    financial = {f.name for f in acc.flows if f.financial}
    assert {"Outside equity raised", "Chips investment in Lab", "New borrowing",
            "Debt repayment"} <= financial


def test_unknown_flow_suggests_the_closest_name(baseline):
    acc, _, _ = baseline
    with pytest.raises(A.AccountingError, match="Chips investment in Lab"):
        acc.flow("Chips investmnt in Lab")


def _broken_copy(tmp_path, edit):
    """Copy the carousel model into tmp_path with one edit applied to its text."""
    text = paths.MODEL_FILE.read_text(encoding="utf-8")
    new = edit(text)
    assert new != text, "the edit did not change the model"
    out = tmp_path / "broken.mdl"
    out.write_text(new, encoding="utf-8")
    return out


def _last_outflow_of_lab_cash():
    acc = A.read_accounts()
    terms = acc.stock_flows[acc.cash["Lab"]]
    return [n for s, n in terms if s < 0][-1]


def _drop_flow_from_lab_cash(text: str, flow: str) -> str:
    m = re.search(r"^Lab Cash\s*=\s*INTEG\s*\((.*?),\s*\n", text, flags=re.M | re.S)
    assert m, "no Lab Cash INTEG in the model"
    eq = m.group(1)
    new_eq = re.sub(r"\s*-\s*" + re.escape(flow) + r"(?![\w ]*\w)", "", eq, count=1)
    assert new_eq != eq
    return text[:m.start(1)] + new_eq + text[m.end(1):]


def test_structure_check_catches_a_flow_missing_from_a_cash_stock(tmp_path):
    flow = _last_outflow_of_lab_cash()
    broken = _broken_copy(tmp_path, lambda t: _drop_flow_from_lab_cash(t, flow))
    with pytest.raises(A.AccountingError) as err:
        A.read_accounts(broken)
    assert "Lab Cash" in str(err.value) and flow in str(err.value)


def test_structure_check_catches_a_mistagged_flow(tmp_path):
    flow = _last_outflow_of_lab_cash()
    acc = A.read_accounts()
    f = acc.flow(flow)

    def retag(text):
        return text.replace(f"[flow: {f.source} -> {f.target}]", "[flow: Lab -> Cloud]", 1) \
            if text.count(f"[flow: {f.source} -> {f.target}]") == 1 else \
            re.sub(r"(^" + re.escape(flow) + r"\s*=.*?~.*?~\s*)\[flow: [^\]]*\]",
                   r"\1[flow: Lab -> Cloud]", text, count=1, flags=re.M | re.S)
    broken = _broken_copy(tmp_path, retag)
    with pytest.raises(A.AccountingError, match="Cloud Cash"):
        A.read_accounts(broken)


def test_numeric_check_catches_a_broken_flow_and_names_row_sector_time(tmp_path):
    """With the structure check off, the per-step check still catches the broken model."""
    flow = _last_outflow_of_lab_cash()
    broken = _broken_copy(tmp_path, lambda t: _drop_flow_from_lab_cash(t, flow))
    acc = A.read_accounts(broken, check=False)
    ds = A.run_for_accounts(model_file=broken, acc=acc)
    with pytest.raises(A.AccountingError) as err:
        A.check_accounts(ds, acc)
    msg = str(err.value)
    assert "'Lab Cash'" in msg and "sector Lab" in msg and re.search(r"time 20\d\d", msg)


def test_numeric_check_catches_a_perturbed_flow_value(baseline):
    acc, ds, _ = baseline
    bad = ds.copy(deep=True)
    k = 100
    bad["GPU purchases"].values[k] += 1e-3
    with pytest.raises(A.AccountingError) as err:
        A.check_accounts(bad, acc)
    assert "Cloud" in str(err.value) and f"{float(ds.time[k]):g}" in str(err.value)


def test_check_refuses_a_run_not_saved_every_step(baseline):
    acc, ds, _ = baseline
    with pytest.raises(A.AccountingError, match="SAVEPER"):
        A.check_accounts(ds.isel(time=slice(None, None, 16)), acc)


# ------------------------------------------------------------------------------------ matrices

@pytest.mark.parametrize("case", ["baseline", "stress"])
def test_accounts_add_up_at_every_step(case, baseline, stress):
    acc, ds, _ = _cases(baseline, stress)[case]
    worst = A.check_accounts(ds, acc, rtol=RTOL)
    assert max(worst.values()) <= RTOL


def test_transaction_matrix_rows_sum_to_zero_and_columns_give_cash_changes(baseline):
    acc, ds, _ = baseline
    period = (acc.time[0] + 1.0, acc.time[0] + 6.0)
    tfm = A.transaction_matrix(ds, acc, period=period)
    flows = tfm.drop(index="total", level=0)
    scale = np.abs(flows[list(acc.sectors)].to_numpy()).max()
    assert np.abs(flows["Row sum"].to_numpy()).max() <= RTOL * scale
    net = tfm.loc[("total", "Net cash flow (column sum)")]
    for s, cname in acc.cash.items():
        c = ds[cname]
        change = float(c.sel(time=period[1]) - c.sel(time=period[0]))
        assert net[s] == pytest.approx(change, rel=RTOL, abs=RTOL * scale)
    # net lending = change in net financial worth (book)
    nfw = A.net_financial_worth(ds, acc)
    lend = tfm.loc[("total", "Net lending (sum of current rows)")]
    for s in acc.loop_sectors:
        change = float(nfw[s].loc[period[1]] - nfw[s].loc[period[0]])
        assert lend[s] == pytest.approx(change, rel=RTOL, abs=RTOL * scale)


def test_balance_sheet_claims_sum_to_zero(baseline):
    acc, ds, _ = baseline
    bs = A.balance_sheet(ds, acc, acc.time[0] + 5.0)
    claims = bs.xs("claim", level=0)
    assert len(claims) >= 3
    assert np.abs(claims["Row sum"].to_numpy()).max() <= RTOL * np.abs(claims.to_numpy()).max()
    net = bs.loc[("total", "Net worth (book)")]
    body = bs.drop(index=["total", "memo"], level=0, errors="ignore")
    for s in acc.sectors:
        assert net[s] == pytest.approx(body[s].sum(), rel=1e-12, abs=1e-9)


def test_money_is_conserved_over_the_whole_run(baseline, stress):
    for acc, ds, _ in (baseline, stress):
        tfm = A.transaction_matrix(ds, acc)
        net = tfm.loc[("total", "Net cash flow (column sum)")]
        row_out = -float(net[list(acc.row_sectors)].sum())
        loop_change = sum(float(ds[c].values[-1] - ds[c].values[0]) for c in acc.cash.values())
        gross = float(np.abs(tfm.drop(index="total", level=0)[list(acc.sectors)]).to_numpy().sum())
        assert row_out == pytest.approx(loop_change, abs=RTOL * gross)


def test_tables_export_as_csv_and_latex(baseline, tmp_path):
    acc, ds, trace = baseline
    csv, tex = A.write_table(A.who_paid(ds, trace, acc, "GPU purchases"), tmp_path, "gpu")
    assert csv.read_text().splitlines()[0].startswith("origin,amount,share")
    text = tex.read_text()
    assert r"\begin{tabular}" in text and "End users" in text and r"\$" not in text.split(
        r"\begin{tabular}")[1].split(r"\toprule")[0]


# ------------------------------------------------------------------------------------ tracing

@pytest.mark.parametrize("case", ["baseline", "stress"])
def test_origins_sum_to_the_untraced_stock_at_every_step(case, baseline, stress):
    acc, ds, trace = _cases(baseline, stress)[case]
    for s in acc.loop_sectors:
        cash = ds[acc.cash[s]].values
        total = trace["holdings"].sel(sector=s).sum("origin").values
        scale = np.maximum(np.abs(cash), 1.0)
        assert np.max(np.abs(total - cash) / scale) <= RTOL, s


@pytest.mark.parametrize("case", ["baseline", "stress"])
def test_origin_shares_of_every_stock_sum_to_one(case, baseline, stress):
    acc, _, trace = _cases(baseline, stress)[case]
    shares = trace["shares"].sum("origin").values
    nonzero = np.abs(trace["cash"].values) > 0
    assert np.all(np.abs(shares[nonzero] - 1.0) <= RTOL)
    mix = trace["outflow_mix"].sum("origin").values
    assert np.all(np.abs(mix - 1.0) <= RTOL)
    pos = trace["cash"].values > 0
    held = trace["holdings"].values.transpose(1, 0, 2)[:, pos]
    assert held.min() >= -RTOL * np.abs(trace["cash"].values).max()  # no negative origin


def test_each_origin_is_conserved(baseline):
    """Money in from each origin = what the loop still holds + what it paid out to RoW."""
    acc, ds, trace = baseline
    for o in acc.origins:
        if o == A.OVERDRAFT:
            continue
        if o == A.OPENING:
            put_in = sum(float(ds[c].values[0]) for c in acc.cash.values())
        else:
            put_in = sum(float(A.who_paid(ds, trace, acc, f.name).loc["Total", "amount"])
                         for f in acc.flows if f.source == o and f.target in acc.loop_sectors)
        paid_out = sum(float(A.who_paid(ds, trace, acc, f.name).loc[o, "amount"])
                       for f in acc.flows
                       if f.source in acc.loop_sectors and f.target in acc.row_sectors)
        held = float(trace["holdings"].sel(origin=o).isel(time=-1).sum())
        repaid = float(trace["repaid"].sel(origin=o).isel(time=-1).sum())
        assert put_in == pytest.approx(held + paid_out + repaid, rel=RTOL, abs=1e-9), o


def test_who_paid_shares_sum_to_one_and_by_year_adds_up(baseline):
    acc, ds, trace = baseline
    t0 = acc.time[0]
    for f in A.LOOP_FLOWS:
        tab = A.who_paid(ds, trace, acc, f, (t0 + 1, t0 + 6))
        if f == "Chips investment in Lab":
            # per-GW vendor financing: the letter lapsed in Feb 2026 before the first GW
            assert tab.loc["Total", "amount"] == 0
            continue
        assert tab.loc["Total", "amount"] > 0
        assert tab["share"].drop("Total").sum() == pytest.approx(1.0, rel=RTOL)
        direct = float(ds[f].sel(time=slice(t0 + 1, t0 + 6 - 1e-9)).sum()) * (
            float(ds.time[1] - ds.time[0]))
        assert tab.loc["Total", "amount"] == pytest.approx(direct, rel=RTOL)
        by_year = A.who_paid_by_year(ds, trace, acc, f, (t0 + 1, t0 + 6))
        assert list(by_year.index) == [int(t0) + k for k in range(1, 6)]
        assert by_year["Total"].iloc[-1] == pytest.approx(tab.loc["Total", "amount"], rel=RTOL)


def test_market_value_per_dollar_of_commitment_is_defined(baseline):
    acc, ds, trace = baseline
    mv = A.market_value_per_commitment(ds, trace, acc)
    assert set(acc.loop_sectors) <= set(mv.index)
    assert (mv["commitment"] > 0).all()
    assert 0.0 <= mv["end_user_backing"].iloc[0] <= 1.0
    row = mv.loc["All loop sectors"]
    assert row["gain"] == pytest.approx(mv.loc[list(acc.loop_sectors), "gain"].sum())
    assert row["backed_gain"] == pytest.approx(row["gain"] * row["end_user_backing"])


# ------------------------------------------------------------------------------ hand-checkable

def test_only_equity_investors_put_money_in_so_they_paid_everything():
    """Tiny loop: all cash starts at 0 and only equity investors pay in."""
    acc, ds, trace = A.analyse(model_file=TINY)
    assert acc.origins == ("Equity investors", A.OPENING, A.OVERDRAFT)
    for f in ("Lab payments to Cloud", "GPU purchases", "Chips investment in Lab", "Chips costs"):
        tab = A.who_paid(ds, trace, acc, f)
        assert tab.loc["Total", "amount"] > 0
        assert tab.loc["Equity investors", "share"] == pytest.approx(1.0, rel=1e-12)
    shares = trace["shares"].sel(origin="Equity investors").values
    funded = trace["cash"].values > 0
    assert funded.sum() > 0.9 * funded.size  # every sector has cash after a few steps
    assert np.allclose(shares[funded], 1.0, rtol=0, atol=1e-12)


def test_opening_cash_and_equity_mix_half_and_half():
    """Lab starts with 10 and receives 10 a year, pays nothing: after a year, 50/50."""
    acc, ds, trace = A.analyse({"Initial Lab cash": 10, "Lab payment rate": 0}, model_file=TINY)
    t0 = acc.time[0]
    lab = trace["shares"].sel(sector="Lab", time=t0 + 1.0)
    assert float(lab.sel(origin=A.OPENING)) == pytest.approx(0.5, rel=1e-12)
    assert float(lab.sel(origin="Equity investors")) == pytest.approx(0.5, rel=1e-12)


def test_spending_without_cash_is_paid_by_overdraft():
    """Lab has no cash and no inflow but pays 1 a year: 100 % overdraft, holding = -cash."""
    acc, ds, trace = A.analyse({"Equity level": 0, "Lab other cost level": 1,
                                "Lab payment rate": 0}, model_file=TINY)
    tab = A.who_paid(ds, trace, acc, "Lab other costs")
    assert tab.loc[A.OVERDRAFT, "share"] == pytest.approx(1.0)
    end = trace.isel(time=-1).sel(sector="Lab")
    assert float(end["cash"]) == pytest.approx(-(acc.time[1] - acc.time[0]))
    assert float(end["holdings"].sel(origin=A.OVERDRAFT)) == pytest.approx(float(end["cash"]))
    assert float(end["shares"].sel(origin=A.OVERDRAFT)) == pytest.approx(1.0)


def test_period_parsing_and_bounds():
    assert A.parse_period("2025:2030") == (2025.0, 2030.0)
    for bad in ("2030:2025", "2025", "a:b", "2025:2025"):
        with pytest.raises(A.AccountingError, match="period"):
            A.parse_period(bad)
    with pytest.raises(A.AccountingError, match="outside the run"):
        A.check_period((1990.0, 2030.0), (2024.0, 2035.0))


def test_inflows_of_a_step_fund_that_step_so_no_false_overdraft():
    """Lab has no cash but receives 10 a year and spends 10 a year: cash stays 0 and the
    spending is 100 % equity investors' money, not overdraft."""
    acc, ds, trace = A.analyse({"Lab other cost level": 10, "Lab payment rate": 0},
                               model_file=TINY)
    assert np.abs(ds["Lab Cash"].values).max() == 0.0
    tab = A.who_paid(ds, trace, acc, "Lab other costs")
    assert tab.loc["Equity investors", "share"] == pytest.approx(1.0, rel=1e-12)
    assert tab.loc[A.OVERDRAFT, "amount"] == 0.0


def test_market_value_counterfactual_against_itself_is_zero_and_adds_up(baseline, load_script):
    wp = load_script(paths.ANALYSIS_DIR / "whopaid.py")
    acc, ds, trace = baseline
    same = wp.market_value_counterfactual(ds, ds, trace, acc)
    assert np.allclose(same["gain"], 0.0) and np.allclose(same["commitment"], 0.0)
    _, ds_cf, _ = A.analyse(wp.NO_COMMITMENTS, acc=acc, check=False)
    mv = wp.market_value_counterfactual(ds, ds_cf, trace, acc)
    assert (mv["commitment"] > 0).all()
    assert np.allclose(mv["gain"], mv["mv"] - mv["mv_counterfactual"])
    assert mv.loc["All loop sectors", "gain"] == pytest.approx(
        mv.loc[list(acc.loop_sectors), "gain"].sum())
    own = mv["own_commitment"]
    assert own["Cloud"] + own["Chips"] == pytest.approx(own["All loop sectors"], rel=1e-12)
    assert np.allclose(mv["gain_per_own_dollar"], mv["gain"] / own)


def test_a_flow_that_changes_direction_is_refused_by_the_tracing():
    acc, ds, _ = A.analyse(model_file=TINY)
    bad = ds.copy(deep=True)
    bad["GPU purchases"].values[5] = -1.0
    with pytest.raises(A.AccountingError, match="'GPU purchases'.*negative"):
        A.trace_origins(bad, acc)


def test_trace_step_is_pure_and_conserves_money():
    # two loop sectors, origins (Investors, Opening balances, Overdraft); flows:
    # Investors -> X (10), X -> Y (15: X has 5 + 10, so it pays exactly its pool), Y -> RoW (30)
    pool = np.array([[0.0, 5.0, 0.0], [0.0, 20.0, 0.0]])
    deficit = np.array([0.0, 0.0])
    amounts = np.array([10.0, 15.0, 30.0])
    payer, payee, origin_of = np.array([-1, 0, 1]), np.array([0, 1, -1]), np.array([0, -1, -1])
    args = (pool.copy(), deficit.copy(), amounts.copy(), payer, payee, origin_of, 2)
    mix, new_pool, new_deficit, repaid = A.trace_step(*args)
    assert np.array_equal(args[0], pool) and np.array_equal(args[1], deficit)
    assert np.allclose(mix.sum(axis=1), 1.0)
    assert mix[0] == pytest.approx([10 / 15, 5 / 15, 0.0])
    # Y's pool is 20 + 15 = 35 and pays 30: no overdraft, 5 left in Y's own mix
    assert new_deficit == pytest.approx([0.0, 0.0]) and not repaid.any()
    cash_after = new_pool.sum(axis=1) - new_deficit
    assert cash_after == pytest.approx([5 + 10 - 15, 20 + 15 - 30])
