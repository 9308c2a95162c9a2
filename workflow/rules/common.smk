import itertools
import os

from cgflow.config import validate_config
from cgflow.method_settings import RE_METHODS
from cgflow.study import StudySettings, method_settings

# Stop before anything runs if the config is wrong; fills in schema defaults.
validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))


wildcard_constraints:
    system="[A-Za-z][A-Za-z0-9_]*",
    mapping="[A-Za-z0-9_]+",
    method="|".join(config["methods"]),
    n_train=r"\d+",
    seed=r"\d+",
    dt=r"[0-9][0-9.eE+-]*",
    temperature=r"[0-9][0-9.eE+-]*",


def fmt(x):
    """Number as it appears in paths and wildcards (3.0 -> '3', 0.005 -> '0.005')."""
    return f"{x:g}"


def settings(*keys, method=False):
    """Params function: the system's validated settings, as JSON, cut down to what
    the step reads (entry blocks ``keys``; with ``method``, the settings of the
    ``method`` wildcard; the ``dt`` wildcard as the only time step), so that a job
    reruns only when those change."""

    def scoped(wildcards):
        study = StudySettings.from_config(config, wildcards.system)
        study = study.scoped(keys, [wildcards.method] if method else [])
        if "dt" in wildcards.keys() and "simulation" in study.entry:
            study.entry["simulation"] = {
                **study.entry["simulation"],
                "dt": [float(wildcards.dt)],
            }
        return study.to_json()

    return scoped


def runs():
    """One dict of wildcards per trained model in the study."""
    for system, entry in config["systems"].items():
        for temperature, mapping, method, n_train, seed in itertools.product(
            entry["temperatures"],
            entry["mappings"],
            method_settings(config, entry),
            entry.get("n_train", []),
            config["seeds"],
        ):
            yield dict(
                system=system,
                mapping=mapping,
                temperature=fmt(temperature),
                method=method,
                n_train=n_train,
                seed=seed,
            )


def datasets():
    for system, entry in config["systems"].items():
        for temperature, mapping in itertools.product(
            entry["temperatures"], entry["mappings"]
        ):
            yield dict(system=system, mapping=mapping, temperature=fmt(temperature))


def all_metrics():
    files = [
        "results/{system}/{mapping}/T{temperature}/reference/metrics.json".format(**d)
        for d in datasets()
    ]
    for run in runs():
        for dt in config["systems"][run["system"]]["simulation"]["dt"]:
            path = "results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/metrics.json"
            files.append(path.format(dt=fmt(dt), **run))
    return files


def figures():
    out = [
        "results/figures/free_energy_{system}_{mapping}_T{temperature}.png".format(**d)
        for d in datasets()
    ]
    if any(True for _ in runs()):
        out += ["results/figures/error_vs_n_train.png", "results/figures/error_vs_dt.png"]
    return out


def reference_system(wildcards):
    return StudySettings.from_config(config, wildcards.system).build_system()


def reference_size(wildcards):
    """Frames scored when the reference is evaluated by halves."""
    entry = config["systems"][wildcards.system]
    return reference_system(wildcards).n_reference_frames(entry) // 2


def reference_seed(wildcards):
    entry = config["systems"][wildcards.system]
    return reference_system(wildcards).reference_settings(entry).seed


def conda_env(side, gpu=False):
    """Conda environment file for one side of the DAG, "openmm" or "jax" (--sdm conda).

    Rules that a cluster profile sends to GPU nodes (gpu=True) take the CUDA build when
    the environment variable CGFLOW_CUDA_ENVS=1 is set; every other rule, and every rule
    on a laptop, takes the CPU build.
    """
    flag = os.environ.get("CGFLOW_CUDA_ENVS", "0")
    if flag not in ("0", "1"):
        raise WorkflowError(f"CGFLOW_CUDA_ENVS must be 0 or 1, not {flag!r}")
    variant = "-cuda" if gpu and flag == "1" else ""
    return f"../../envs/{side}{variant}.yaml"


def model_file(wildcards, name):
    """File of the model a simulation uses: one per run, or one per run and dt for RE."""
    run = (
        "results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}".format(
            **wildcards
        )
    )
    folder = f"{run}/dt{wildcards.dt}" if wildcards.method in RE_METHODS else run
    return os.path.join(folder, "model", name)


def fm_start_model(wildcards):
    """fm_re starts from the FM model of the same run; re from the fitted prior."""
    if wildcards.method != "fm_re":
        return []
    return "results/{system}/{mapping}/T{temperature}/fm/n{n_train}_s{seed}/model/model.json".format(
        **wildcards
    )
