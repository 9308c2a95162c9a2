"""Relative entropy training: reweighting, the gradient against quadrature, recovery of
a harmonic spring constant, and resuming from a checkpoint."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cgflow.methods.base import Problem
from cgflow.methods.re import RESettings, re_gradient_fn, re_trainer, reweight, train_re
from cgflow.simulate.settings import IntegratorSettings


def test_reweight_weights_and_neff():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)  # samples of exp(-x^2 / 2), kT = 1
    u_old = 0.5 * x**2
    w, n_eff, dlnz = reweight(u_old, u_old, beta=1.0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert n_eff == pytest.approx(x.size, rel=1e-9) and dlnz == pytest.approx(0.0, abs=1e-12)
    # a constant shift of the energy changes nothing but ln Z
    w2, n_eff2, dlnz2 = reweight(u_old + 1e4, u_old, beta=1.0)
    np.testing.assert_allclose(w2, w, rtol=1e-9)
    assert n_eff2 == pytest.approx(x.size) and dlnz2 == pytest.approx(-1e4)
    # moving the spring constant from 1 to k: N_eff drops, ln Z changes by -ln(k) / 2
    prev = n_eff
    for k in (1.1, 1.3, 1.6):
        w, n_eff, dlnz = reweight(0.5 * k * x**2, u_old, beta=1.0)
        assert w.sum() == pytest.approx(1.0, abs=1e-12) and np.all(w >= 0)
        assert n_eff < prev
        prev = n_eff
        assert dlnz == pytest.approx(-0.5 * np.log(k), abs=0.01)


def test_reweight_is_stable_for_large_energies():
    u_old = np.zeros(1000)
    u_new = np.linspace(0.0, 5e3, 1000)  # exp(-5000) underflows without log-sum-exp
    w, n_eff, dlnz = reweight(u_new, u_old, beta=1.0)
    assert np.all(np.isfinite(w)) and w[0] > 0.6 and np.isfinite(dlnz)
    assert 1.0 <= n_eff < 3.0


def _quadrature_srel(u_aa, u_model, grid, beta):
    """S_rel(theta) up to a constant: beta <U_theta>_AA + ln Z_theta, both by quadrature."""
    dx = grid[1] - grid[0]
    p_aa = np.exp(-beta * (u_aa - u_aa.min()))
    p_aa /= p_aa.sum() * dx
    e = -beta * u_model
    lnz = e.max() + np.log(np.exp(e - e.max()).sum() * dx)
    return beta * np.sum(p_aa * u_model) * dx + lnz


def _exact_samples(u, grid, beta, n, rng):
    p = np.exp(-beta * (u - u.min()))
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.interp(rng.uniform(size=n), cdf, grid)


@pytest.mark.parametrize("moved", [False, True])
def test_re_gradient_matches_quadrature(moved):
    """Code gradient (samples, optionally reweighted) = finite differences of exact S_rel."""
    beta = 1.0 / 1.5
    grid = np.linspace(-4.0, 4.0, 40001)
    u_aa = grid**4 - 2.0 * grid**2 + 0.3 * grid

    def energy(p, R):
        x = R[0, 0]
        return p["a"] * x**2 + p["b"] * x**4 + p["c"] * x

    theta = {"a": -0.5, "b": 0.6, "c": -0.2}

    def u_model(th):
        return th["a"] * grid**2 + th["b"] * grid**4 + th["c"] * grid

    fd = {}
    for name in theta:
        h = 1e-4
        up, dn = dict(theta), dict(theta)
        up[name] += h
        dn[name] -= h
        fd[name] = (
            _quadrature_srel(u_aa, u_model(up), grid, beta)
            - _quadrature_srel(u_aa, u_model(dn), grid, beta)
        ) / (2 * h)
    rng = np.random.default_rng(1)
    n = 400_000
    x_ref = _exact_samples(u_aa, grid, beta, n, rng)
    theta_old = {"a": -0.45, "b": 0.62, "c": -0.15} if moved else theta
    x_cg = _exact_samples(u_model(theta_old), grid, beta, n, rng)
    as_r = lambda x: jnp.asarray(x, jnp.float32).reshape(-1, 1, 1)  # noqa: E731
    params = {k: jnp.float32(v) for k, v in theta.items()}
    old = {k: jnp.float32(v) for k, v in theta_old.items()}
    u_old = jax.vmap(energy, (None, 0))(old, as_r(x_cg))
    grad_fn = re_gradient_fn(energy, beta, n_beads=1)  # chunks of 4,096 frames, padded
    g, _, _ = jax.jit(grad_fn)(params, as_r(x_ref), as_r(x_cg), u_old)
    got = np.array([float(g[k]) for k in theta])
    want = np.array([fd[k] for k in theta])
    assert np.linalg.norm(want) > 0.3  # far from the optimum: a real gradient
    assert np.linalg.norm(got - want) < 0.03 * np.linalg.norm(want), (got, want)


def _harmonic_run(settings, key=0, stop_after=None, **kw):
    kT, k_true = 1.5, 4.0
    rng = np.random.default_rng(0)
    R = rng.normal(0, np.sqrt(kT / k_true), size=(5000, 1, 1)).astype(np.float32)

    def energy(p, R):
        return 0.5 * jnp.exp(p["logk"]) * jnp.sum(R**2)

    sim = IntegratorSettings(dt=0.05, friction=2.0)
    problem = Problem(energy, {"logk": jnp.float32(0.0)}, R, np.ones(1), kT, integrator=sim, **kw)
    params, history = train_re(problem, settings, jax.random.PRNGKey(key), stop_after)
    return float(jnp.exp(params["logk"])), history, k_true


@pytest.mark.slow
def test_re_recovers_a_harmonic_spring_constant():
    s = RESettings(
        learning_rate=0.05,
        n_updates=150,
        n_replicas=64,
        equilibration_steps=50,
        sample_steps=1000,
        save_every=10,
    )
    k, history, k_true = _harmonic_run(s)
    assert k == pytest.approx(k_true, rel=0.04), k  # starts at k = 1
    assert history[0]["resimulated"] == 1
    assert 1 <= sum(h["resimulated"] for h in history) < len(history)  # reweighting is used
    assert all(h["n_eff_fraction"] >= s.neff_threshold - 1e-9 or h["resimulated"] for h in history)


@pytest.mark.slow
def test_re_resumes_from_its_checkpoint(tmp_path):
    s = RESettings(
        learning_rate=0.05,
        n_updates=20,
        n_replicas=16,
        equilibration_steps=20,
        sample_steps=100,
        save_every=5,
        checkpoint_every=10,
    )
    ckpt = tmp_path / "re.ckpt.npz"
    k_full, h_full, _ = _harmonic_run(s)
    _, h_first, _ = _harmonic_run(s, checkpoint=ckpt, stop_after=10)
    assert len(h_first) == 10 and ckpt.exists()
    log = io.StringIO()
    k_resumed, h_resumed, _ = _harmonic_run(s, checkpoint=ckpt, log=log)
    assert "resumed" in log.getvalue() and "at check 10" in log.getvalue()
    assert [h["update"] for h in h_resumed] == list(range(20))
    assert k_resumed == pytest.approx(k_full, rel=1e-5)
    # a checkpoint written with other settings is not used
    other = RESettings(**{**s.__dict__, "learning_rate": 0.01})
    log = io.StringIO()
    _harmonic_run(other, checkpoint=ckpt, log=log, stop_after=1)
    assert "other settings" in log.getvalue()
    # nor one written with other inputs (data, prior, seed, start model: the train
    # step's digest of them)
    _harmonic_run(s, checkpoint=ckpt, stop_after=10, inputs="data A")
    log = io.StringIO()
    _harmonic_run(s, checkpoint=ckpt, log=log, stop_after=1, inputs="data B")
    assert "other settings" in log.getvalue() and "resumed" not in log.getvalue()


@pytest.mark.slow
def test_re_can_keep_the_model_best_on_held_out_frames(tmp_path):
    """Held-out frames from a softer spring (k = 1, where RE starts) than the training
    frames (k = 4): their relative entropy only rises as RE moves towards k = 4, so
    keep=best_held_out returns the starting model and keep=last the trained one;
    a resumed run keeps the same best model."""
    kT = 1.5
    R_val = np.random.default_rng(5).normal(0, np.sqrt(kT / 1.0), (2000, 1, 1))
    base = dict(n_updates=20, n_replicas=16, equilibration_steps=20, sample_steps=100)
    s = RESettings(learning_rate=0.05, save_every=5, checkpoint_every=10, **base)
    k_last, history, _ = _harmonic_run(s, R_val=R_val)
    val = [h["val_loss"] for h in history]
    # S_val(k) = k / 2 - ln(k) / 2 + const: flat at k = 1 (the first steps differ by
    # less than the noise of ln Z), 0.09 higher at k = 1.75
    assert k_last > 1.5 and np.argmin(val) <= 2 and val[-1] > val[0] + 0.05
    best = RESettings(**{**s.__dict__, "keep": "best_held_out"})
    k_best, _, _ = _harmonic_run(best, R_val=R_val)
    assert k_best < 1.12  # at most 2 updates (of 5 % each in ln k) from the start
    ckpt = tmp_path / "re.ckpt.npz"
    _harmonic_run(best, R_val=R_val, checkpoint=ckpt, stop_after=10)
    k_resumed, _, _ = _harmonic_run(best, R_val=R_val, checkpoint=ckpt)
    assert k_resumed == pytest.approx(k_best, rel=1e-5)
    with pytest.raises(ValueError, match="keep"):
        RESettings(keep="best")


def test_re_sampler_saves_at_its_own_interval():
    """RE's replicas keep a frame every methods.re.save_every steps, whatever the
    simulation block's save_every: a bead pulled by a constant force at terminal
    velocity (kT ~ 0) moves save_every * dt * F / (m gamma) between frames."""
    F, gamma, dt = 2.0, 50.0, 0.001  # gamma dt = 0.05: BAOAB drift exact to ~2e-4
    s = RESettings(n_updates=1, n_replicas=2, equilibration_steps=200, sample_steps=20,
                   save_every=5, neff_threshold=1.0)  # fmt: skip
    problem = Problem(lambda p, R: -F * jnp.sum(R), {}, np.zeros((4, 1, 1)), np.ones(1), 1e-9,
                      integrator=IntegratorSettings(dt=dt, friction=gamma))  # fmt: skip
    trainer = re_trainer(problem, s, optax.sgd(0.0))
    state = trainer.init({}, jax.random.PRNGKey(0))
    state, _ = trainer.step(state, jax.random.PRNGKey(1))  # burn 200 steps, then 4 frames
    frames = np.asarray(state.X_cg).reshape(2, 4)  # replica-major
    np.testing.assert_allclose(np.diff(frames, axis=1), 5 * dt * F / gamma, rtol=1e-3)


def test_re_settings_reject_bad_values():
    with pytest.raises(ValueError, match="neff_threshold"):
        RESettings(neff_threshold=1.5)
    with pytest.raises(ValueError, match="n_updates"):
        RESettings(n_updates=0)
    with pytest.raises(ValueError, match="unknown"):
        RESettings.from_dict({"n_update": 3})


@pytest.mark.slow
def test_re_tracks_ln_z_across_resimulations_by_bar():
    """For U = k x^2 / 2, ln Z(k) - ln Z(1) = -ln(k) / 2 exactly. RE's held-out
    relative entropy beta <U>_val + ln Z, after 40 updates with many re-simulations
    (ln Z carried between sample sets by BAR), minus the exact beta <U>_val, must
    give that ln Z within 0.03 nats; every carried link reports its standard error."""
    kT = 1.5
    R_val = np.random.default_rng(5).normal(0, 1.0, (1000, 1, 1))
    s = RESettings(learning_rate=0.05, n_updates=40, n_replicas=32, equilibration_steps=20,
                   sample_steps=200, save_every=5, neff_threshold=0.995)  # fmt: skip
    _, history, _ = _harmonic_run(s, R_val=R_val)
    k_39, _, _ = _harmonic_run(s, R_val=R_val, stop_after=39)  # the parameters row 39 scores
    links = [h["lnz_bar_se"] for h in history if h["resimulated"]][1:]
    assert len(links) >= 5 and all(0 < se < 0.05 for se in links)
    beta_u_val = 0.5 * k_39 * np.mean(R_val**2) / kT
    lnz = history[39]["val_loss"] - beta_u_val
    assert k_39 > 2.0  # moved far from k = 1: ln Z changed by more than 0.35
    assert lnz == pytest.approx(-0.5 * np.log(k_39), abs=0.03)
    assert sum(h["force_evaluations"] for h in history) == (len(links) + 1) * 32 * 220


def test_re_averages_its_parameters_when_asked():
    """With ema_decay the model is the moving average of the updates: k rises
    monotonically from 1 towards 4, so the average lags the last iterate, by about
    the last 1 / (1 - decay) updates' progress."""
    base = dict(learning_rate=0.05, n_updates=20, n_replicas=16, equilibration_steps=20,
                sample_steps=100, save_every=5)  # fmt: skip
    k_last, _, _ = _harmonic_run(RESettings(**base))
    k_avg, _, _ = _harmonic_run(RESettings(**base, ema_decay=0.8))
    assert 1.0 < k_avg < k_last - 0.04
    with pytest.raises(ValueError, match="ema_decay"):
        RESettings(ema_decay=1.0)


@pytest.mark.slow
def test_re_can_keep_the_model_whose_samples_are_closest_to_held_out_frames():
    """Held-out frames from k = 2, between RE's start (k = 1) and the training
    frames' k = 4: the squared MMD of the (reweighted) CG samples to them falls, then
    rises as RE passes k = 2, so keep=best_sample_score returns a model near k = 2
    while keep=last goes on past it."""
    kT = 1.5
    R_val = np.random.default_rng(5).normal(0, np.sqrt(kT / 2.0), (2000, 1, 1))
    s = RESettings(learning_rate=0.05, n_updates=40, n_replicas=32, equilibration_steps=20,
                   sample_steps=200, save_every=5)  # fmt: skip
    k_last, history, _ = _harmonic_run(s, R_val=R_val)
    mmd = np.array([h["val_mmd"] for h in history])
    assert np.all(np.isfinite(mmd)) and np.isfinite(history[0]["val_srel"])
    assert k_last > 2.6 and mmd[-1] > mmd.min() + 2e-3
    best = RESettings(**{**s.__dict__, "keep": "best_sample_score"})
    k_best, h_best, _ = _harmonic_run(best, R_val=R_val)
    assert [h["val_loss"] for h in h_best] == [h["val_mmd"] for h in h_best]
    assert k_best == pytest.approx(2.0, rel=0.2), k_best


@pytest.mark.slow
def test_re_stops_when_its_relative_entropy_estimate_runs_away():
    """With divergence_nats tiny, the first fall of the S_rel estimate (k moves from
    1 toward 4) stops the run as diverged; with 0 it never stops."""
    kw = dict(learning_rate=0.05, n_updates=6, n_replicas=8, equilibration_steps=10,
              sample_steps=100, save_every=10)  # fmt: skip
    with pytest.raises(FloatingPointError, match="S_rel estimate ran away"):
        _harmonic_run(RESettings(**kw, divergence_nats=1e-6))
    _, history, _ = _harmonic_run(RESettings(**kw, divergence_nats=0.0))
    assert len(history) == 6 and history[-1]["loss"] < history[0]["loss"] - 1e-6
