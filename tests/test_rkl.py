"""Reverse KL (data-free): the bound, its reparametrised gradient, and training, on
targets whose ln Z and moments are known in closed form."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.methods import rkl
from cgflow.methods.base import GeneratorProblem
from cgflow.systems import get_system
from cgflow.systems.double_well import pmf_x1

M, S = 1.5, 0.5  # the 1-D Gaussian target N(M, S^2) at beta = 1


def gaussian_energy(x):
    return jnp.sum((x - M) ** 2) / (2 * S**2)


LOG_Z = 0.5 * math.log(2 * math.pi) + math.log(S)


def fixed_generator(mu: float, sigma: float):
    """A decoder that ignores z (N(mu, sigma^2)) and an encoder equal to q(z): then
    L = KL(N(mu, sigma^2) || N(M, S^2)) - ln Z exactly."""
    settings = rkl.RKLSettings(latent_dim=1, hidden=4)
    gen = rkl.make_generator(settings, 1)
    params = rkl.init_generator(gen, jax.random.PRNGKey(0))
    for part, (mean, log_sigma) in (("decoder", (mu, math.log(sigma))), ("encoder", (0.0, 0.0))):
        heads = sorted(k for k in params[part]["params"] if k.startswith("Dense"))[-2:]
        for head, value in zip(heads, (mean, log_sigma), strict=True):
            layer = params[part]["params"][head]
            layer["kernel"] = jnp.zeros_like(layer["kernel"])
            layer["bias"] = jnp.full_like(layer["bias"], value)
    return gen, params


def gaussian_kl(mu, sigma, m, s):
    return math.log(s / sigma) + (sigma**2 + (mu - m) ** 2) / (2 * s**2) - 0.5


@pytest.mark.slow
def test_the_bound_equals_its_closed_form_and_its_gap_is_the_kl():
    gen, params = fixed_generator(1.0, 0.8)
    terms = rkl.bound_terms(gen, gaussian_energy, params, jax.random.PRNGKey(1), 200_000, 1.0)
    l = np.asarray(terms["l"])
    exact = gaussian_kl(1.0, 0.8, M, S) - LOG_Z
    assert abs(l.mean() - exact) < 4.5 * l.std() / math.sqrt(l.size)
    # at the target itself the bound is tight: L = -ln Z with no variance
    gen, params = fixed_generator(M, S)
    terms = rkl.bound_terms(gen, gaussian_energy, params, jax.random.PRNGKey(2), 1000, 1.0)
    np.testing.assert_allclose(np.asarray(terms["l"]), -LOG_Z, atol=1e-4)
    log_z, ess = rkl.log_z_and_ess(terms)
    assert float(log_z) == pytest.approx(LOG_Z, abs=1e-4) and float(ess) == pytest.approx(1000)


@pytest.mark.slow
def test_the_reparametrised_gradient_matches_finite_differences():
    """With the noise held fixed, L is a smooth function of the parameters: its
    gradient by reparametrisation (through the energy's forces) equals a central
    difference along a random direction."""
    with jax.enable_x64(True):
        settings = rkl.RKLSettings(latent_dim=1, hidden=8)
        gen = rkl.make_generator(settings, 1)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                              rkl.init_generator(gen, jax.random.PRNGKey(3)))  # fmt: skip
        key = jax.random.PRNGKey(4)

        def bound(p):
            return jnp.mean(rkl.bound_terms(gen, gaussian_energy, p, key, 64, 1.0)["l"])

        grad = jax.grad(bound)(params)
        leaves, tree = jax.tree.flatten(params)
        rng = np.random.default_rng(0)
        direction = jax.tree.unflatten(tree, [rng.standard_normal(a.shape) for a in leaves])
        h = 1e-5

        def shifted(sign):
            return jax.tree.map(lambda a, d: a + sign * h * d, params, direction)

        fd = (bound(shifted(1)) - bound(shifted(-1))) / (2 * h)
        analytic = sum(
            jnp.sum(g * d)
            for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
        )
        assert float(analytic) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)


@pytest.mark.slow
def test_training_recovers_a_gaussian_target():
    settings = rkl.RKLSettings(latent_dim=1, hidden=16, samples_per_step=256, steps=3000,
                               learning_rate=3e-3, log_every=500, init_scale=1.0)  # fmt: skip
    problem = GeneratorProblem(gaussian_energy, 1, 1.0)
    gen, params, history = rkl.train_rkl(problem, settings, jax.random.PRNGKey(5))
    x = rkl.sample(gen, params, jax.random.PRNGKey(6), 20_000)["x"][:, 0]
    # sampling error of the mean S / sqrt(n) = 0.0035; of the variance ~1 %
    assert abs(x.mean() - M) < 0.03 and abs(x.var() / S**2 - 1) < 0.08
    gap = history[-1]["bound"] + LOG_Z
    assert -0.02 < gap < 0.02
    assert history[-1]["beta"] == pytest.approx(1.0)
    assert history[0]["beta"] < 1.0  # annealed in
    assert history[-1]["energy_evaluations"] == 3000 * 256
    assert history[-1]["ess_fraction"] > 0.9


@pytest.mark.slow
def test_the_double_well_bound_lies_above_minus_ln_z():
    """The exact ln Z of the coupled double well (kT 3, d = 1) matches the issue's
    5.7519, and a briefly trained generator's bound lies above -ln Z (the gap is a KL)."""
    kT, d = 3.0, 1.0
    x = np.linspace(-12.0, 12.0, 400_001)
    log_z = math.log(np.trapezoid(np.exp(-pmf_x1(x) / kT), x)) + 0.5 * math.log(
        2 * math.pi * kT / d
    )
    assert log_z == pytest.approx(5.7519, abs=1e-4)
    system = get_system("double_well", {"potential": {"c": 2.0, "d": d}})

    def energy(flat):
        x1, x2 = flat[0], flat[1]
        return 0.25 * x1**4 - 3.0 * x1**2 + x1 + 0.5 * d * (x2 - 2.0 * jnp.sin(x1)) ** 2

    probe = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(
        np.asarray(jax.vmap(energy)(jnp.asarray(probe))),
        system.energy(probe.reshape(5, 2, 1)), rtol=1e-5,
    )  # fmt: skip
    settings = rkl.RKLSettings(latent_dim=1, hidden=32, samples_per_step=256, steps=1500,
                               learning_rate=3e-3, log_every=500)  # fmt: skip
    _, _, history = rkl.train_rkl(GeneratorProblem(energy, 2, kT), settings,
                                  jax.random.PRNGKey(7))  # fmt: skip
    gap = history[-1]["bound"] + log_z
    assert gap > -0.05  # a bound: L >= -ln Z up to the sampling noise of a check's mean
    assert history[-1]["log_z_estimate"] < log_z + 0.05


@pytest.mark.parametrize(("d", "log_z"), [(1.0, 5.7519), (10.0, 4.6006), (100.0, 3.4493)])
def test_the_double_well_gives_its_exact_ln_z_and_its_energy_in_jax(d, log_z):
    """The system's ln Z (kT 3, any c) is the issue's, and its JAX energy is its
    NumPy energy, with the variable stiffness too."""
    system = get_system("double_well", {"potential": {"c": 2.0, "d": d}})
    assert system.log_partition(3.0) == pytest.approx(log_z, abs=1e-4)
    thermal = get_system("double_well", {"potential": {"c": 2.0, "d": d, "a": 1.0}})
    probe = 2.0 * np.random.default_rng(0).normal(size=(6, 2))
    energy = jax.vmap(thermal.aa_energy_jax())(jnp.asarray(probe))
    np.testing.assert_allclose(np.asarray(energy), thermal.energy(probe.reshape(6, 2, 1)),
                               rtol=1e-5, atol=1e-4)  # fmt: skip


@pytest.mark.slow
def test_a_training_killed_after_a_checkpoint_resumes_to_the_same_generator(tmp_path):
    settings = rkl.RKLSettings(latent_dim=1, hidden=8, samples_per_step=32, steps=400,
                               log_every=50, init_scale=1.0)  # fmt: skip
    key, ck = jax.random.PRNGKey(3), tmp_path / "rkl.ckpt"
    _, whole, _ = rkl.train_rkl(GeneratorProblem(gaussian_energy, 1, 1.0), settings, key)
    problem = GeneratorProblem(gaussian_energy, 1, 1.0, checkpoint=ck, inputs="f")
    rkl.train_rkl(problem, settings, key, stop_after=5)
    assert ck.is_file()
    _, resumed, history = rkl.train_rkl(problem, settings, key)
    assert history[-1]["step"] == 400
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_train_generator_and_generate_write_what_evaluate_scores(tmp_path):
    """The DAG's two steps: a generator folder, then samples with latent variables and
    a status giving the gap to the exact ln Z; evaluate adds the CV scores."""
    from cgflow.steps.evaluate import evaluate_step
    from cgflow.steps.generate import generate_step, train_generator
    from cgflow.study import StudySettings

    config = {
        "seeds": [0], "val_fraction": 0.1,
        "methods": {"rkl": {"steps": 600, "samples_per_step": 128, "log_every": 100,
                            "learning_rate": 0.003}},
        "systems": {"dw": {"type": "double_well", "potential": {"c": 2.0, "d": 1.0},
                           "temperatures": [3.0], "mappings": ["x1"],
                           "simulation": {"dt": [0.05], "n_steps": 100, "save_every": 10,
                                          "n_replicas": 400}}},
    }  # fmt: skip
    from cgflow.config import validate_config

    study = StudySettings.from_config(validate_config(config), "dw")
    desc = train_generator(study, "rkl", 3.0, "x1", 0, tmp_path / "model")
    assert desc.n_train == 0 and desc.training["energy_evaluations"] == 600 * 128
    assert desc.training["exact_log_z"] == pytest.approx(5.7519, abs=1e-4)
    assert (tmp_path / "model" / "train_log.png").is_file()
    status = generate_step(study, tmp_path / "model", None, tmp_path / "dt0")
    assert status.n_samples == 400 * 10  # as many as a simulation saves
    assert status.stable and status.gap > -3 * status.bound_se  # a KL: >= 0
    assert sum(status.basin_fractions.values()) == pytest.approx(1.0)
    assert (tmp_path / "dt0" / "latent.png").stat().st_size > 5_000  # z against x1
    stiffer = dict(config, systems={"dw": {**config["systems"]["dw"],
                                           "potential": {"c": 2.0, "d": 25.0}}})  # fmt: skip
    other = StudySettings.from_config(validate_config(stiffer), "dw")
    with pytest.raises(ValueError, match="the generator was trained on"):
        generate_step(other, tmp_path / "model", 10, tmp_path / "other")
    run = {"system": "dw", "mapping": "x1", "method": "rkl", "n_train": 0, "seed": 0,
           "dt": 0.0, "temperature": 3.0, "run_dir": str(tmp_path / "dt0")}  # fmt: skip
    metrics = evaluate_step(study, tmp_path / "dt0" / "samples.npz", run,
                            str(tmp_path / "dt0" / "metrics.json"),
                            str(tmp_path / "dt0" / "status.json"))  # fmt: skip
    assert 0 <= metrics["latent_corr_x1"] <= 1 and metrics["latent_mi_x1"] >= 0
    assert metrics["bound_gap"] == pytest.approx(status.gap)
    assert metrics["ess_fraction"] == pytest.approx(status.ess_fraction)
    assert "replicas_crossing" not in metrics  # independent draws, not chains
    assert np.isfinite(metrics["pmf_wrmse_kT"])


def test_a_data_free_method_on_a_system_without_a_jax_energy_is_refused():
    from cgflow.config import ConfigError, load_config, validate_config

    config = load_config("config/smoke.yaml")
    config["methods"]["rkl"] = {}
    entry = config["systems"]["alanine_dipeptide"]
    entry["potential"]["solvent"] = "implicit"  # JAX MD converts no implicit solvent
    entry.update(methods={"rkl": {}}, n_train=[100],
                 simulation={"dt": [0.002], "n_steps": 100, "save_every": 10})  # fmt: skip
    with pytest.raises(ConfigError, match="rkl needs the all-atom energy in JAX"):
        validate_config(config)
