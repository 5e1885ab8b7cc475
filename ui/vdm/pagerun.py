"""A reverse run computed in the page: what the server sends once so the page takes exactly the
steps the server would, and how the server's own copy of the run catches up when it is asked for
something (a download, a Step on the server after the switch).

The page (ui/static/views/run.js) runs eps_hat = eps_theta(x_t, t) itself, in a Web Worker
(onnxruntime-web, ui/static/lib/eps.js), and applies each step's `StepRule` (lib/sampler.js):

    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)      (clipped when the rule says so)
    x_{t_prev} = x0 x0_hat + xt x_t + eps eps_hat + noise z

The rules are the sampler's own (`Sampler.rules`, the function `Sampler.step` applies), x_T is
the run's, and each z is the very draw the server's step would make (`step_generator(seed, k)`
of the seed the page's branches give step k). So the page's run is the server's run up to the
two runtimes' float rounding, and a request or two per run replaces one per step.

    plan(session, start, branches) -> {"fields", "rules", "start", "x", "x0_before",
                                       "noise_steps", "noise"}
    catch_up(session, taken, branches)   the server's run at the page's step, with its branches
"""

from __future__ import annotations

import numpy as np

from explorer.noise import standard_normal
from explorer.samplers import StepRule
from explorer.sampling import step_generator
from explorer.trajectory import SHAPE
from explorer.validate import check_int, check_seed

from ..page import float32_b64
from ..store import STORE
from .run import _Holding, _require

FIELDS = list(StepRule._fields)          # a rule's numbers, in the order the page reads them


def check_branches(session, branches) -> list[tuple[int, int]]:
    """The page's branches of the session's run: [[0, seed of the run], [k, seed], ...] with k
    increasing within 1..evaluations - 1 (at most one a step: a network evaluation), else a
    ValueError naming them."""
    run = session.run
    valid = (f"[[0, {run.branches[0][1]}], [step, seed], ...] with steps increasing in "
             f"1..{run.evaluations - 1}")
    if not isinstance(branches, list) or not 1 <= len(branches) <= run.evaluations:
        raise ValueError(f"branches: {str(branches)[:80]} is not valid; valid: {valid}")
    out = []
    for item in branches:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise ValueError(f"branches: {str(item)[:40]} is not valid; valid: {valid}")
        start = check_int("branches", item[0], 0, run.evaluations - 1)
        if out and start <= out[-1][0]:
            raise ValueError(f"branches: steps must increase; valid: {valid}")
        out.append((start, check_seed(item[1])))
    if out[0] != (0, run.branches[0][1]):
        raise ValueError(f"branches: the first must be [0, {run.branches[0][1]}] (the run's "
                         f"seed); valid: {valid}")
    return out


def seed_of(branches: list[tuple[int, int]], k: int) -> int:
    """The seed of step k's noise under `branches` (as `Trajectory.seed_of`)."""
    return [seed for start, seed in branches if start <= k][-1]


def catch_up(session, taken, branches) -> None:
    """Make the server's run the page's: the page's branches, `taken` steps. Steps the server
    holds already with the same noise are kept; the others are computed here (the server's
    work happens only when someone asks it for this run)."""
    session = _require(session)
    run = session.run
    taken = check_int("taken", taken, 0, run.evaluations)
    branches = check_branches(session, branches)
    if run.taken == taken and run.branches == branches:
        return
    model = STORE.model(session.dataset, "vdm")
    with _Holding(session):
        same = next((k for k in range(run.taken) if run.seed_of(k) != seed_of(branches, k)),
                    run.taken)
        run.rewind(min(same, taken))
        run.branches = branches
        while run.taken < taken:
            run.advance(model.predict_noise, model.schedule)
    session.shown = run.taken


def plan(session, start, branches, need_x: bool = True) -> dict:
    """What the page needs to take the steps from `start` on itself: the rule of every step,
    the z of every step from `start` on that adds noise, drawn as the server's step would under
    the page's `branches`, and with `need_x` the sample before step `start` (float32; the
    server's run catches up to it first when it does not hold it: a page holds the samples of
    the steps it took, so it asks only after taking over a run the server took)."""
    session = _require(session)
    run = session.run
    start = check_int("start", start, 0, run.evaluations - 1)
    branches = check_branches(session, branches)
    if need_x and (run.taken < start
                   or any(run.seed_of(k) != seed_of(branches, k) for k in range(start))):
        catch_up(session, start, branches)
    rules = run.make_sampler(STORE.model(session.dataset, "vdm").schedule).rules()
    noisy = [k for k in range(start, run.evaluations) if rules[k].noise > 0.0]
    z = [standard_normal(SHAPE, step_generator(seed_of(branches, k), k)).numpy() for k in noisy]
    # the x0_hat of the step before `start` (a 2nd-order rule there reads it; the page keeps it)
    x0_before = need_x and start > 0
    return {"fields": FIELDS, "rules": [list(r) for r in rules], "start": start,
            "x": float32_b64(run.xs[start].numpy()) if need_x else None,
            "x0_before": float32_b64(run.x0s[start - 1].numpy()) if x0_before else None,
            "noise_steps": noisy,
            "noise": float32_b64(np.concatenate(z)) if z else ""}
