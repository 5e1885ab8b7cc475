"""A reverse run a person drives (explorer.trajectory) and the pieces it stands on: runs resumed at
any step, per-step seeds, and denoising from a chosen t (set_timesteps(n, t_start)). Checked with
the analytic denoisers of test_samplers: Gaussian data N(m, v) and a point mass."""

from __future__ import annotations

import pytest
import torch

from explorer.samplers import DDIMSampler, DDPMSampler, make_sampler
from explorer.sampling import sample, sample_progressive, step_generator
from explorer.schedules import make_schedule
from explorer.trajectory import Trajectory
from test_samplers import F64, M, T, V, GaussianEps, _gen, _one_thread  # noqa: F401 (autouse)

SHAPE = (16, 1, 2, 2)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("cosine", T)


def _x_T(seed: int = 0) -> torch.Tensor:
    return torch.randn(SHAPE, dtype=F64, generator=_gen(seed))


def test_set_timesteps_from_t_start(schedule):
    sampler = DDPMSampler(schedule)
    for t_start, n in [(T, 50), (400, 400), (400, 7), (1, 1)]:
        sampler.set_timesteps(n, t_start=t_start)
        ts = sampler.timesteps.tolist()
        assert len(ts) == len(set(ts)) == n and ts[0] == t_start and ts[-1] == (1 if n > 1 else t_start)
        assert all(a > b for a, b in zip(ts, ts[1:])) and sampler.previous_timestep(ts[-1]) == 0
    for n, t_start in [(5, 0), (5, T + 1), (401, 400), (0, 400)]:
        with pytest.raises(ValueError):
            sampler.set_timesteps(n, t_start=t_start)


def test_denoising_from_t_follows_the_flow_from_there(schedule):
    """Noise Gaussian data to x_t ~ q(x_t) = N(sqrt(abar_t) m, abar_t v + 1 - abar_t) and run DDIM
    (eta = 0) from t: the probability-flow ODE maps quantiles to quantiles, so x_0 is
    m + sqrt(v) zeta with zeta = x_t standardised, up to the first-order error of the steps."""
    t = 400
    ab = schedule.alpha_bar[t]
    zeta = torch.randn(256, 1, 2, 2, dtype=F64, generator=_gen(1))
    x_t = ab.sqrt() * M + (ab * V + 1 - ab).sqrt() * zeta
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=False)
    errors = []
    for steps in (50, 100, t):
        sampler.set_timesteps(steps, t_start=t)
        errors.append(float((sample(GaussianEps(schedule), sampler, x_T=x_t)
                             - (M + V.sqrt() * zeta)).abs().max()))
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.02, errors


def test_a_run_resumed_at_any_step_repeats_the_same_steps(schedule):
    """With per-step generators, resuming at step k from that step's x_t draws the same noises."""
    sampler = DDPMSampler(schedule, clip_sample=False)
    sampler.set_timesteps(30)
    eps_model = GaussianEps(schedule)
    per_step = lambda k: step_generator(7, k)
    full = list(sample_progressive(eps_model, sampler, x_T=_x_T(), generator=per_step))
    for k in (1, 17, 29):
        resumed = list(sample_progressive(eps_model, sampler, x_T=full[k].x_t, start=k,
                                          generator=per_step))
        assert [s.index for s in resumed] == list(range(k, 30))
        assert all(torch.equal(a.x_prev, b.x_prev) for a, b in zip(full[k:], resumed))
    with pytest.raises(ValueError, match="start must be"):
        next(sample_progressive(eps_model, sampler, x_T=_x_T(), start=30))


def test_step_generator_gives_independent_reproducible_streams():
    draw = lambda seed, k: torch.randn(1000, generator=step_generator(seed, k))
    assert torch.equal(draw(3, 5), draw(3, 5))
    others = [draw(3, 6), draw(4, 5), draw(3, -1)]
    for other in others:
        assert abs(float(torch.corrcoef(torch.stack([draw(3, 5), other]))[0, 1])) < 0.15


@pytest.mark.parametrize("name, kwargs", [("ddpm", {}), ("ddim", {"eta": 0.5}), ("dpmpp2m", {}),
                                          ("dpmpp2m_sde", {}), ("heun", {})])
def test_a_trajectory_stepped_by_hand_is_one_seeded_run(schedule, name, kwargs):
    """Stepped by hand (each step a new sampler resumed where the run is: a multistep solver
    and Heun's corrector read the x0_hat of the step before from the run), run to the end, it
    is the one seeded run of the sampler; Heun's 20 steps are 39 network evaluations."""
    eps_model = GaussianEps(schedule)
    run = Trajectory.start(name, 20, kwargs.get("eta", 0.0), seed=5, x_T=_x_T())
    for _ in range(4):
        run.advance(eps_model, schedule)
    list(run.run(eps_model, schedule))
    evaluations = 39 if name == "heun" else 20
    assert run.done and run.taken == run.evaluations == evaluations
    assert len(run.xs) == evaluations + 1
    assert run.timesteps(schedule) == tuple(s for s in run.make_sampler(schedule).timesteps.tolist())
    assert run.advance(eps_model, schedule) is None                 # nothing left to take
    sampler = make_sampler(name, schedule, timestep_spacing=run.timestep_spacing, **kwargs)
    sampler.set_timesteps(20)
    ref = list(sample_progressive(eps_model, sampler, x_T=_x_T(),
                                  generator=lambda k: step_generator(5, k)))
    assert all(torch.equal(x, s.x_prev) for x, s in zip(run.xs[1:], ref))
    assert all(torch.equal(x0, s.pred_x0) for x0, s in zip(run.x0s, ref))


def test_rewind_replays_exactly_and_a_branch_changes_only_what_follows(schedule):
    eps_model = GaussianEps(schedule)
    run = Trajectory.start("ddpm", 25, seed=0, x_T=_x_T())
    list(run.run(eps_model, schedule))
    first = [x.clone() for x in run.xs]
    run.rewind(10)
    assert run.taken == 10 and len(run.xs) == 11 and not run.done
    list(run.run(eps_model, schedule))
    assert all(torch.equal(a, b) for a, b in zip(first, run.xs))     # same seed: same run
    run.rewind(10)
    run.branch(99)
    list(run.run(eps_model, schedule))
    assert all(torch.equal(a, b) for a, b in zip(first[:11], run.xs[:11]))
    assert not torch.equal(first[11], run.xs[11])                    # new noise from step 10
    assert run.branches == [(0, 0), (10, 99)] and run.seed_of(9) == 0 and run.seed_of(10) == 99
    run.rewind(3)
    run.branch(5)                                                     # the old branch is gone
    assert run.branches == [(0, 0), (3, 5)]
    with pytest.raises(ValueError, match="rewind to a step in 0..3"):
        run.rewind(4)


@pytest.mark.parametrize("name", ["ddim", "dpmpp2m", "heun"])
def test_a_deterministic_branch_changes_nothing(schedule, name):
    """DDIM with eta = 0 and the ODE solvers draw no noise after x_T: a new seed cannot change
    the run, and a rewound multistep run (its step 5 reads step 4's x0_hat) ends where it did."""
    eps_model = GaussianEps(schedule)
    run = Trajectory.start(name, 15, eta=0.0, seed=0, x_T=_x_T())
    list(run.run(eps_model, schedule))
    end = run.x.clone()
    run.rewind(5)
    run.branch(1234)
    list(run.run(eps_model, schedule))
    assert torch.equal(run.x, end)


@pytest.mark.parametrize("name", ["ddpm", "ddim"])
def test_point_mass_data_is_reached_exactly(schedule, name):
    """If the data is one image c, eps_hat = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t) is exact,
    x0_hat = c at every step, and the run ends at c whatever the seed."""
    c = torch.tensor([[0.5, -0.25], [0.0, 1.0]], dtype=F64).reshape(1, 1, 2, 2)
    ab = schedule.alpha_bar

    def eps_model(x_t, t):
        a = ab[t].reshape(-1, 1, 1, 1)
        return (x_t - a.sqrt() * c) / (1 - a).sqrt()
    for seed in (0, 1):
        run = Trajectory.start(name, 10, seed=seed, x_T=_x_T(seed))
        list(run.run(eps_model, schedule))
        torch.testing.assert_close(run.x, c.expand(SHAPE), rtol=0, atol=1e-9)
        assert all(torch.allclose(x0, c.expand(SHAPE), atol=1e-9) for x0 in run.x0s)


def test_start_checks_the_sampler_name():
    with pytest.raises(ValueError, match="valid: 'ddpm', 'ddim'"):
        Trajectory.start("euler", 10)
    run = Trajectory.start("ddim", 10, seed=3)
    assert run.x.shape == (1, 1, 28, 28) and torch.equal(
        run.x, Trajectory.start("ddim", 10, seed=3).x)


def test_start_draws_x_T_through_the_prior():
    """The seed fixes z ~ N(0, I); a prior maps it to x_T (a VDM's prior_from_standard)."""
    plain = Trajectory.start("ddpm", 5, seed=4)
    shifted = Trajectory.start("ddpm", 5, seed=4, prior=lambda z: 0.5 * z + 1.0)
    assert torch.equal(shifted.x, 0.5 * plain.x + 1.0)
    given = torch.zeros(1, 1, 28, 28)
    assert torch.equal(Trajectory.start("ddpm", 5, x_T=given, prior=lambda z: z + 1).x, given)
