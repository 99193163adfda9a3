"""Money tracing, "who paid?" (part of :mod:`aicarousel.accounts`).

The rules (well-mixed cash, exact Euler steps, overdraft) are in the docstring of
:mod:`aicarousel.accounts`; :func:`trace_step` is one step of them as a pure function and
:func:`trace_origins` applies it along a run.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .matrices import _flow_matrix
from .series import _period_mask, run_time_step, run_values, check_period
from .structure import LOOP_FLOWS, OPENING, OVERDRAFT, AccountingError, Accounts

# --------------------------------------------------------------------------------------------
# Money tracing
# --------------------------------------------------------------------------------------------

def trace_step(pool: np.ndarray, deficit: np.ndarray, amounts: np.ndarray, payer: np.ndarray,
               payee: np.ndarray, origin_of: np.ndarray, overdraft: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One Euler step of the money tracing (pure: no argument is changed).

    The rules are those of :func:`trace_origins` (well-mixed cash; the step's pool is the
    start-of-step cash plus the step's inflows; inflows first repay the deficit; what cannot be
    paid from the pool is ``Overdraft`` money).

    Parameters
    ----------
    pool : numpy.ndarray, shape (sector, origin)
        Funded cash of each loop sector by origin at the start of the step ($B, >= 0).
    deficit : numpy.ndarray, shape (sector,)
        Overdraft each loop sector owes at the start of the step ($B, >= 0).
    amounts : numpy.ndarray, shape (flow,)
        Money each tagged flow moves in the step, ``dt * flow(t)`` ($B, >= 0).
    payer, payee : numpy.ndarray of int, shape (flow,)
        Index of the loop sector paying / receiving each flow; -1 for a Rest-of-World sector.
    origin_of : numpy.ndarray of int, shape (flow,)
        Index of the origin of a flow paid by a Rest-of-World sector (-1 for the others).
    overdraft : int
        Index of the ``Overdraft`` origin.

    Returns
    -------
    mix : numpy.ndarray, shape (sector, origin)
        Origin mix of each sector's outflows in the step (1; each row sums to 1).
    pool : numpy.ndarray, shape (sector, origin)
        Funded cash by origin at the end of the step ($B).
    deficit : numpy.ndarray, shape (sector,)
        Overdraft owed at the end of the step ($B).
    repaid : numpy.ndarray, shape (sector, origin)
        Inflow used in the step to repay the deficit, by origin ($B).
    """
    nL, nO = pool.shape
    P, D = pool, deficit.copy()
    O = np.zeros(nL)                      # gross outflow of each sector in the step
    R = np.zeros((nL, nO))                # inflows from RoW, by origin
    A = np.zeros((nL, nL))                # A[y, x]: amount loop sector y pays x
    for j in range(amounts.size):
        if payer[j] >= 0:
            O[payer[j]] += amounts[j]
            if payee[j] >= 0:
                A[payer[j], payee[j]] += amounts[j]
        elif payee[j] >= 0:
            R[payee[j], origin_of[j]] += amounts[j]
    e_ovd = np.zeros(nO)
    e_ovd[overdraft] = 1.0
    # the pool of the step: start-of-step cash plus the step's inflows; its total does not
    # depend on the payers' mixes (they sum to 1), so the regime of each sector is known
    tot = P.sum(axis=1) + R.sum(axis=1) + A.sum(axis=0)
    avail = tot - D
    w = np.where(O > 0, np.clip(avail / np.where(O > 0, O, 1.0), 0.0, 1.0),
                 (avail > 0).astype(float))
    c = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)
    # m_x = c_x * (P_x + R_x + sum_y A[y, x] m_y) + (1 - w_x) e_ovd : linear in the mixes
    lhs = np.eye(nL) - c[:, None] * A.T
    rhs = c[:, None] * (P + R) + (1.0 - w)[:, None] * e_ovd[None, :]
    try:
        M = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        M = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    new = P + R + A.T @ M
    repaid = np.zeros((nL, nO))
    for i in range(nL):
        pt = new[i].sum()
        if D[i] > 0 and pt > 0:              # inflows first repay the deficit
            pay = min(D[i], pt)
            used = new[i] * (pay / pt)
            repaid[i] = used
            new[i] -= used
            D[i] -= pay
            pt -= pay
        take = min(O[i], max(pt, 0.0))
        if pt > 0 and take > 0:
            new[i] *= (1.0 - take / pt)
        D[i] += O[i] - take
    return M, new, D, repaid


def trace_origins(ds: xr.Dataset, acc: Accounts) -> xr.Dataset:
    """Trace each loop sector's cash back to its origins (well-mixed, exact Euler).

    See the module docstring for the rules. The state of sector X at time t is its funded
    pool ``P[X, o] >= 0`` by origin and its deficit ``D[X] >= 0`` (cash = sum(P) - D). In the
    step from t to t + dt, with gross outflow ``O[X] = dt * sum(outflows of X)(t)``, inflows
    ``R[X, o]`` from RoW origins and ``A[Y, X]`` from loop sector Y:

    - the step's pool is ``Q[X] = P[X] + R[X] + sum_Y A[Y, X] * m[Y]``, where ``m[Y]`` is
      Y's outflow mix in the step; its total does not depend on the mixes;
    - ``Q`` first repays ``D`` (pro rata across origins; recorded in ``repaid``); what is left,
      ``avail = sum(Q) - D``, pays the outflows; if ``avail < O`` the rest, ``O - avail``, is
      ``Overdraft`` and adds to ``D``;
    - hence ``m[X] = w * Q[X] / sum(Q[X]) + (1 - w) * e_Overdraft`` with
      ``w = clip(avail / O, 0, 1)``: linear in the mixes, solved exactly each step;
    - the new pool is what is left of ``Q`` after the repayment and the outflows.

    Each step is :func:`trace_step`.

    Parameters
    ----------
    ds : xarray.Dataset
        Run saved at every time step (:func:`run_for_accounts`).
    acc : Accounts

    Returns
    -------
    xarray.Dataset
        Dimensions ``sector`` (loop sectors), ``origin`` (:attr:`Accounts.origins`), ``time``.
        ``holdings`` ($B): cash of each sector by origin (``Overdraft`` holds minus the
        deficit), sums over origins to the cash stock; ``shares`` (1): holdings / cash (NaN
        when cash is exactly 0); ``outflow_mix`` (1): the mix ``m`` of the sector's outflows
        in the step starting at ``time``; ``repaid`` ($B): cumulative inflow used to repay
        deficits, by origin.
    """
    dt = run_time_step(ds)
    t = np.asarray(ds["time"].values, dtype=float)
    n_t = t.size
    L = list(acc.loop_sectors)
    origins = list(acc.origins)
    o_idx = {o: i for i, o in enumerate(origins)}
    ovd = o_idx[OVERDRAFT]
    s_idx = {s: i for i, s in enumerate(L)}
    F = _flow_matrix(ds, acc)
    if (F < 0).any():
        k, j = np.argwhere(F < 0)[0]
        f = acc.flows[j]
        raise AccountingError(f"flow {f.name!r} [flow: {f.source} -> {f.target}] is negative "
                              f"({F[k, j]:.6g}) at time {t[k]:g}; tracing needs flows that keep "
                              f"their direction: split it into two tagged flows, one each way")
    nL, nO = len(L), len(origins)
    P = np.zeros((nL, nO))
    D = np.zeros(nL)
    cash0 = np.array([run_values(ds, acc.cash[s])[0] for s in L])
    for i, c in enumerate(cash0):
        if c >= 0:
            P[i, o_idx[OPENING]] = c
        else:
            D[i] = -c
    holdings = np.zeros((nL, nO, n_t))
    mixes = np.full((nL, nO, n_t), np.nan)
    repaid = np.zeros((nL, nO, n_t))
    rep_cum = np.zeros((nL, nO))
    payer = np.array([s_idx.get(f.source, -1) for f in acc.flows], dtype=int)
    payee = np.array([s_idx.get(f.target, -1) for f in acc.flows], dtype=int)
    origin_of = np.array([o_idx.get(f.source, -1) for f in acc.flows], dtype=int)
    for k in range(n_t):
        H = P.copy()
        H[:, ovd] -= D
        holdings[:, :, k] = H
        repaid[:, :, k] = rep_cum
        amounts = dt * F[k]
        if k == n_t - 1:
            amounts = np.zeros_like(amounts)  # no step follows the last time
        M, P, D, used = trace_step(P, D, amounts, payer, payee, origin_of, ovd)
        mixes[:, :, k] = M
        rep_cum = rep_cum + used
    cash = np.stack([run_values(ds, acc.cash[s]) for s in L])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = holdings / np.where(cash == 0, np.nan, cash)[:, None, :]
    coords = {"sector": L, "origin": origins, "time": t}
    out = xr.Dataset(
        {"holdings": (("sector", "origin", "time"), holdings,
                      {"units": "$B", "description": "cash of each loop sector by origin"}),
         "shares": (("sector", "origin", "time"), shares,
                    {"units": "1", "description": "holdings / cash stock"}),
         "outflow_mix": (("sector", "origin", "time"), mixes,
                         {"units": "1", "description": "origin mix of the sector's outflows in "
                                                      "the step starting at time"}),
         "repaid": (("sector", "origin", "time"), repaid,
                    {"units": "$B", "description": "cumulative inflow used to repay the "
                                                   "sector's overdraft, by origin"}),
         "cash": (("sector", "time"), cash, {"units": "$B", "description": "model cash stock"})},
        coords=coords)
    out.attrs.update({k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))})
    out.attrs["assumption"] = "well-mixed cash; outflows carry the payer's start-of-step mix"
    out.attrs["time_step"] = dt
    return out


def flow_origins(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str) -> xr.DataArray:
    """Amount of a flow paid by each origin in each step ($B per step).

    Parameters
    ----------
    ds : xarray.Dataset
        The traced run.
    trace : xarray.Dataset
        :func:`trace_origins` of ``ds``.
    acc : Accounts
    flow : str
        Vensim name of a tagged flow.

    Returns
    -------
    xarray.DataArray
        Dimensions ``(origin, time)``: ``dt * flow(t) * mix(t)``; the last time is 0 (no step
        follows it).
    """
    f = acc.flow(flow)
    dt = run_time_step(ds)
    v = dt * run_values(ds, f.name)
    v[-1] = 0.0
    if f.source in acc.loop_sectors:
        mix = trace["outflow_mix"].sel(sector=f.source).transpose("origin", "time").values
        mix = np.nan_to_num(mix)
    else:
        mix = np.zeros((len(acc.origins), v.size))
        mix[list(acc.origins).index(f.source)] = 1.0
    return xr.DataArray(mix * v[None, :], dims=("origin", "time"),
                        coords={"origin": list(acc.origins), "time": trace["time"].values},
                        name=f.name, attrs={"units": "$B", "flow": f.name})


def who_paid(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str,
             period: tuple[float, float] | None = None) -> pd.DataFrame:
    """Who paid for a flow over a period: amount and share by origin.

    Definition: the amount of ``flow`` paid by origin ``o`` over [start, end) is
    ``sum(dt * flow(t) * mix_o(t))`` over the model's steps ``start <= t < end``, where
    ``mix(t)`` is the paying sector's outflow mix (well-mixed cash) or, for a flow paid by a
    RoW sector, 1 for that sector's own origin.

    Parameters
    ----------
    ds, trace, acc
        The run, its :func:`trace_origins` and the accounts structure.
    flow : str
        Vensim name of a tagged flow, e.g. ``"Chips investment in Lab"``.
    period : (float, float), optional
        Half-open interval in years; default the whole run.

    Returns
    -------
    pandas.DataFrame
        Index: origins, then ``Total``; columns ``amount`` ($B) and ``share`` (1; sums to 1).
    """
    per = flow_origins(ds, trace, acc, flow)
    mask = _period_mask(np.asarray(ds["time"].values, dtype=float), period)
    amounts = per.values[:, :-1][:, mask].sum(axis=1)
    total = float(amounts.sum())
    df = pd.DataFrame({"amount": amounts,
                       "share": amounts / total if total != 0 else np.full(amounts.size, np.nan)},
                      index=pd.Index(list(acc.origins), name="origin"))
    df.loc["Total"] = [total, 1.0 if total != 0 else np.nan]
    return df


def who_paid_by_year(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str,
                     period: tuple[float, float] | None = None,
                     cumulative: bool = True) -> pd.DataFrame:
    """Who paid for a flow, year by year.

    Definition: row ``y`` holds the amount of ``flow`` paid by each origin in the steps
    ``y <= t < y + 1`` (see :func:`who_paid`); with ``cumulative`` the running total from the
    start of the period to the end of year ``y``. A period starting or ending inside a year
    gives partial first or last rows (only the steps inside the period count).

    Parameters
    ----------
    ds, trace, acc
    flow : str
    period : (float, float), optional
        Years to include, [start, end); default the whole run.
    cumulative : bool
        Running totals (default) or amounts within each year.

    Returns
    -------
    pandas.DataFrame
        Index ``year`` (int); columns: origins then ``Total`` ($B).
    """
    per = flow_origins(ds, trace, acc, flow)
    t = np.asarray(ds["time"].values, dtype=float)
    mask = _period_mask(t, period)
    tt = t[:-1][mask]
    vals = per.values[:, :-1][:, mask]
    years = np.floor(tt + 1e-9).astype(int)
    df = pd.DataFrame(vals.T, columns=list(acc.origins))
    df["year"] = years
    table = df.groupby("year").sum()
    if cumulative:
        table = table.cumsum()
    table["Total"] = table.sum(axis=1)
    table.columns.name = "origin"
    return table


def market_value_per_commitment(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts,
                                window: tuple[float, float] | None = None,
                                after: float = 0.25,
                                backing_period: tuple[float, float] | None = None,
                                contract_flow: str = "New Cloud contracts",
                                vendor_flow: str = "Vendor commitment signing",
                                backed_flow: str = "Lab payments to Cloud") -> pd.DataFrame:
    """Market value each loop sector gained per dollar of commitment, and its revenue backing.

    Definitions
    -----------
    window
        [start, end): by default from the earlier of ``Announced contract time`` and
        ``Vendor commitment time`` to the later plus ``Signing duration`` plus ``after`` years
        (the market values adjust with a delay), all read from the run.
    commitment ($B)
        ``New Cloud contracts`` plus ``Vendor commitment signing`` integrated over the window.
    gain ($B)
        ``<Sector> Market Value`` at the end of the window minus at its start.
    gain per dollar (1)
        gain / commitment.
    end-user backing (1)
        share of ``Lab payments to Cloud`` over ``backing_period`` (default: from the window's
        start to the end of the run) paid with money whose origin is ``End users``: the part
        of the contract's cash actually funded by AI revenue rather than by investors,
        lenders, vendor financing round trips or opening balances.
    backed gain ($B)
        gain times end-user backing: market value backed by end-user revenue.

    Returns
    -------
    pandas.DataFrame
        One row per loop sector with a market-value stock, plus ``All loop sectors``; columns
        ``window_start``, ``window_end``, ``commitment``, ``mv_start``, ``mv_end``, ``gain``,
        ``gain_per_dollar``, ``end_user_backing``, ``backed_gain``, ``backed_gain_per_dollar``.
    """
    t = np.asarray(ds["time"].values, dtype=float)
    dt = run_time_step(ds)
    if window is None:
        def const(name: str) -> float:
            return float(run_values(ds, name)[0])
        times = [const("Announced contract time"), const("Vendor commitment time")]
        window = (min(times), max(times) + const("Signing duration") + after)
    check_period(window, (float(t[0]), float(t[-1])))
    mask = _period_mask(t, window)
    commit = float(dt * (run_values(ds, contract_flow)[:-1][mask]
                         + run_values(ds, vendor_flow)[:-1][mask]).sum())
    k0 = int(np.argmin(np.abs(t - window[0])))
    k1 = int(np.argmin(np.abs(t - window[1])))
    if backing_period is None:
        backing_period = (window[0], float(t[-1]))
    paid = who_paid(ds, trace, acc, backed_flow, backing_period)
    backing = float(paid.loc["End users", "share"]) if "End users" in paid.index else 0.0
    rows = {}
    for s in acc.loop_sectors:
        name = f"{s} Market Value"
        if name not in ds:
            continue
        mv = run_values(ds, name)
        rows[s] = (mv[k0], mv[k1])
    if not rows:
        raise AccountingError("the run has no '<Sector> Market Value' stock for any loop sector; "
                              "market value per dollar of commitment needs them")
    rows["All loop sectors"] = (sum(a for a, _ in rows.values()), sum(b for _, b in rows.values()))
    out = []
    for s, (a, b) in rows.items():
        gain = b - a
        out.append({"sector": s, "window_start": t[k0], "window_end": t[k1], "commitment": commit,
                    "mv_start": a, "mv_end": b, "gain": gain,
                    "gain_per_dollar": gain / commit if commit else np.nan,
                    "end_user_backing": backing, "backed_gain": gain * backing,
                    "backed_gain_per_dollar": gain * backing / commit if commit else np.nan})
    return pd.DataFrame(out).set_index("sector")

def paid_rates(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts,
               flows: Sequence[str] = LOOP_FLOWS) -> xr.DataArray:
    """Rate at which each origin pays each flow over time ($B/Year).

    Returns
    -------
    xarray.DataArray
        Dimensions ``(flow, origin, time)``: ``flow(t) * mix(t)`` (see :func:`flow_origins`).
    """
    arrs = []
    for name in flows:
        f = acc.flow(name)
        if f.source in acc.loop_sectors:
            mix = np.nan_to_num(trace["outflow_mix"].sel(sector=f.source)
                                .transpose("origin", "time").values)
        else:
            mix = (np.array(acc.origins) == f.source).astype(float)[:, None]
        arrs.append(xr.DataArray(mix * run_values(ds, f.name)[None, :], dims=("origin", "time"),
                                 coords={"origin": list(acc.origins),
                                         "time": trace["time"].values}))
    out = xr.concat(arrs, dim=pd.Index([acc.flow(f).name for f in flows], name="flow"))
    out.name = "paid_rate"
    out.attrs = {"units": "$B/Year", "description": "rate at which each origin pays each flow"}
    return out
