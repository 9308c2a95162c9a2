import functools
import itertools
import json
import os
import shutil
import sys

from cgflow import methods
from cgflow.analysis.names import DATASET, RUN, RUN_DT, figure_name
from cgflow.integrity import damaged_results, set_aside
from cgflow.config import load_config, training_temperatures, validate_config
from cgflow.study import StudySettings, method_settings
from cgflow.systems import get_system, reference_settings, scored_exactly
from cgflow.systems import test_reference_settings as test_settings_of

# Stop before anything runs if the config is wrong; fills in schema defaults. A cluster
# job's own Snakemake process skips the method blocks (their modules import JAX): the
# main process checked them, and the job's cgflow step checks its method again.
# Snakemake's YAML loader keeps the last of a key written twice; refuse that first.
for path in workflow.configfiles:
    load_config(path)
validate_config(
    config,
    workflow.source_path("../schemas/config.schema.yaml"),
    method_blocks=workflow.is_main_process,
)

# Methods trained once per run, those trained at each CG time step, and those trained
# once across the training temperatures (registry).
TRAINED_ONCE = methods.names(per_dt=False, temperatures="one", data="cg")
TRAINED_PER_DT = methods.names(per_dt=True, temperatures="one")
TRAINED_ACROSS = methods.names(per_dt=False, temperatures="training")
# Data-free methods (no data, n_train 0) and the methods sampled directly rather
# than simulated (their samples sit under dt0: no time step).
DATA_FREE = methods.names(data="none")
SIMULATED = methods.names(produces="energy")


wildcard_constraints:
    system="[A-Za-z][A-Za-z0-9_]*",
    mapping="[A-Za-z0-9_]+",
    method="|".join(config["methods"]),
    n_train=r"\d+",
    seed=r"\d+",
    dt=r"[0-9][0-9.eE+-]*",
    temperature=r"[0-9][0-9.eE+-]*",
    run=r"\d+",


# Path templates, each written once: under results/ (what a study makes), logs/,
# benchmarks/ and checkpoints/ (outside results/, so that Snakemake never deletes a
# checkpoint with a failed job's outputs) the same folders name the same job.
REFERENCE = "{system}/reference/T{temperature}"  # an all-atom reference
# DATASET (a CG data set, and the runs on it), RUN (a trained model) and RUN_DT (its
# run at a time step) come from cgflow.analysis.names, which reads them back.
GENERATOR = "{system}/{mapping}/T{temperature}/{method}/n0_s{seed}"  # no data
ACROSS = "{system}/{mapping}/multiT"  # the data of all training temperatures
ACROSS_RUN = "{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}"  # trained on them
PRIOR = "prior/n{n_train}_s{seed}"  # a run's prior, under DATASET or ACROSS


def set_aside_damaged_results():
    """Before the DAG is built: each damaged data set or model file under results/
    (cgflow.integrity) is moved to <name>.damaged, so that Snakemake sees it missing
    and runs its producer (and what reads it) again. A dry run only says so; nothing
    is checked while another run holds the folder's lock."""
    if not workflow.is_main_process:
        return
    locks = os.path.join(".snakemake", "locks")
    if os.path.isdir(locks) and os.listdir(locks):
        return  # another run holds the folder: its files may be half-way through a write
    dry_run = getattr(workflow.output_settings, "dryrun", False)  # set before the DAG
    for path, why in damaged_results("results"):
        if dry_run:
            print(
                f"{path}: damaged ({why}); a run sets it aside and makes it again",
                file=sys.stderr,
            )
        else:
            print(
                f"{path}: damaged ({why}); set aside as {set_aside(path).name}, to be "
                "made again",
                file=sys.stderr,
            )


set_aside_damaged_results()


def fmt(x):
    """Number as it appears in paths and wildcards (3.0 -> '3', 0.005 -> '0.005')."""
    return f"{x:g}"


def settings(*keys, method=False, reference=True, declared=True):
    """Params function: the system's validated settings, as JSON, cut down to what
    the step reads (entry blocks ``keys``; with ``method``, the settings of the
    ``method`` wildcard; without ``reference``, not the reference block; without
    ``declared``, not a molecule's declared maps, CVs and basins), so that a job
    reruns only when those change. A step's time step comes from the ``dt``
    wildcard alone."""

    def scoped(wildcards):
        study = StudySettings.from_config(config, wildcards.system)
        methods = [wildcards.method] if method else []
        return study.scoped(keys, methods, reference, declared).to_json()

    return scoped


def test_reference_settings(wildcards):
    """Params function of the test reference: the system's settings with its
    test_reference block when it sets one (so that a study without one keeps the
    params, and the results, it had before the block existed)."""
    if config["systems"][wildcards.system].get("test_reference"):
        return settings("test_reference", declared=False)(wildcards)
    return settings(declared=False)(wildcards)


def training_settings(wildcards):
    """Params function of the training rules: what the method declares it reads."""
    method = methods.get(wildcards.method)
    uses_data = method.data != "none"
    return settings(*method.reads, method=True, reference=uses_data)(wildcards)


def run_folder(wildcards, method=None):
    w = dict(wildcards.items())
    return f"results/{RUN}".format(**{**w, "method": method or w["method"]})


def nearest_training_temperature(system, temperature):
    """The training temperature (of ``temperatures`` less ``held_out_temperatures``)
    nearest to ``temperature`` (the lower of two as near), as in paths."""
    training = training_temperatures(config["systems"][system])
    t = float(temperature)
    return fmt(min(training, key=lambda u: (abs(u - t), u)))


def model_folder(wildcards, method=None):
    """Model folder of a run: one per run, or one per run and dt for methods trained
    at each time step; for methods trained across temperatures one per run of the
    system's training temperatures (``multiT``), whatever temperature it is run at;
    for ``nearest`` methods the ``model_of`` method's folder at the nearest training
    temperature."""
    w = dict(wildcards.items())
    name = method or w["method"]
    m = methods.get(name)
    if m.temperatures == "nearest":
        w["temperature"] = nearest_training_temperature(w["system"], w["temperature"])
        return model_folder(w, m.model_of)
    if m.temperatures == "training":
        parts = [f"results/{ACROSS_RUN}".format(**{**w, "method": name})]
    else:
        parts = [run_folder(w, name)]
    if m.per_dt:
        parts.append(f"dt{w['dt']}")
    return os.path.join(*parts, "model")


def training_data(wildcards):
    """The CG data sets of a system's training temperatures (methods trained across
    temperatures and their prior)."""
    return [
        f"results/{DATASET}/cg.npz".format(
            **{**dict(wildcards.items()), "temperature": fmt(t)}
        )
        for t in training_temperatures(config["systems"][wildcards.system])
    ]


def start_data(wildcards):
    """The data set a simulation's replicas start from: the run's own; for a model
    trained across temperatures, or used away from its temperature, that of the
    nearest training temperature (a held-out temperature's frames are scored on,
    never started from)."""
    w = dict(wildcards.items())
    if methods.get(w["method"]).temperatures != "one":
        w["temperature"] = nearest_training_temperature(w["system"], w["temperature"])
    return f"results/{DATASET}/cg.npz".format(**w)


def temperature_option(wildcards):
    """simulate's options for a model run at another temperature than its data's."""
    kind = methods.get(wildcards.method).temperatures
    if kind == "one":
        return ""
    transfer = " --transfer" if kind == "nearest" else ""
    return f"--temperature {wildcards.temperature}{transfer}"


def model_json(wildcards):
    return os.path.join(model_folder(wildcards), "model.json")


def model_params(wildcards):
    return os.path.join(model_folder(wildcards), "params.msgpack")


def start_model(wildcards):
    """The model a method starts from (declared ``start_from``), of the same run."""
    start = methods.get(wildcards.method).start_from
    return (
        []
        if start is None
        else os.path.join(model_folder(wildcards, start), "model.json")
    )


def start_model_option(wildcards, input):
    return f"--init-model $(dirname {input.init})" if input.init else ""


def run_sizes(method, entry):
    """The n_train values a method runs at: the system's, or 0 for a data-free one
    (a system without n_train trains nothing: its reference only)."""
    if "n_train" not in entry:
        return []
    return [0] if methods.get(method).data == "none" else entry["n_train"]


def run_dts(method, entry):
    """The time steps a method's model is run at: the system's, or 0 (no dynamics)
    for a generator, which is sampled directly."""
    if methods.get(method).produces != "energy":
        return [0]
    return entry["simulation"]["dt"]


@functools.cache
def claimed(system):
    """The (method, n_train, dt) cells of a ``runs: claimed`` system (those its
    claims compare); None for a system that runs every cell."""
    entry = config["systems"][system]
    if entry.get("runs", "all") != "claimed":
        return None
    from cgflow.analysis.claims import claimed_cells  # pandas: only where needed

    cells = [
        dict(method=m, n_train=int(n), dt=float(dt), temperature=float(t))
        for m in method_settings(config, entry)
        for n in run_sizes(m, entry)
        for dt in run_dts(m, entry)
        for t in entry["temperatures"]
    ]
    return claimed_cells(config["claims"], system, cells)


def scored_dts(run):
    """The time steps a run's model is simulated and scored at (its system's, less
    the cells a ``runs: claimed`` system's claims do not compare)."""
    cells = claimed(run["system"])
    return [
        dt
        for dt in run_dts(run["method"], config["systems"][run["system"]])
        if cells is None or (run["method"], int(run["n_train"]), float(dt)) in cells
    ]


def runs():
    """One dict of wildcards per scored model in the study: every method at every
    temperature, except ``nearest`` methods, which run at the held-out ones only;
    data-free methods once per seed (n_train 0); for a ``runs: claimed`` system
    only the runs its claims compare (``scored_dts``)."""
    for system, entry in config["systems"].items():
        held = [float(t) for t in entry.get("held_out_temperatures") or []]
        for temperature, mapping, method, seed in itertools.product(
            entry["temperatures"],
            entry["mappings"],
            method_settings(config, entry),
            entry.get("seeds", config["seeds"]),
        ):
            if (
                methods.get(method).temperatures == "nearest"
                and temperature not in held
            ):
                continue
            for n_train in run_sizes(method, entry):
                run = dict(
                    system=system,
                    mapping=mapping,
                    temperature=fmt(temperature),
                    method=method,
                    n_train=n_train,
                    seed=seed,
                )
                if scored_dts(run):
                    yield run


def datasets():
    for system, entry in config["systems"].items():
        for temperature, mapping in itertools.product(
            entry["temperatures"], entry["mappings"]
        ):
            yield dict(system=system, mapping=mapping, temperature=fmt(temperature))


def all_metrics():
    files = [
        f"results/{DATASET}/reference/metrics.json".format(**d) for d in datasets()
    ]
    for run in runs():
        for dt in scored_dts(run):
            files.append(f"results/{RUN_DT}/metrics.json".format(dt=fmt(dt), **run))
    return files


STAGED = "results/aggregate"
"""Where the aggregate job writes the deliverables before publish copies them."""
DELIVERABLES = (
    "summary.csv",
    "benchmark.csv",
    "benchmark.md",
    "differences.csv",
    "claims.md",
    "claims.csv",
    "failed_runs.csv",
)
"""The study's tables, in results/ (and its figures, results/figures/)."""


def staged(paths):
    """Deliverables' paths under results/ as the aggregate job writes them."""
    return [f"{STAGED}/{path.removeprefix('results/')}" for path in paths]


def publish(sources, targets, log):
    """Rule publish: copy each staged deliverable to its place in results/."""
    for source, target in zip(sources, targets, strict=True):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
    with open(log, "w") as fh:
        fh.write(f"publish: {len(targets)} files from {STAGED} to results/\n")


def figures():
    out = [
        "results/figures/"
        + figure_name(
            system_of(d["system"]).figure_kind,
            d["system"],
            d["mapping"],
            float(d["temperature"]),
        )
        for d in datasets()
    ]
    if any(True for _ in runs()):
        out += [
            "results/figures/error_vs_n_train.png",
            "results/figures/error_vs_dt.png",
        ]
    out.append("results/figures/claims.png")
    return out


@functools.cache
def system_of(name):
    entry = config["systems"][name]
    return get_system(entry.get("type", name), entry)


def reference_run(wildcards):
    """The system and its reference settings."""
    system = system_of(wildcards.system)
    return system, reference_settings(system, config["systems"][wildcards.system])


def reference_size(wildcards):
    """Frames of the training reference (scored as the noise floor)."""
    system, ref = reference_run(wildcards)
    return system.n_reference_frames(ref)


def test_reference(wildcards):
    """The held-out test reference a system's models are scored on; none for
    systems scored against their exact answer."""
    if scored_exactly(system_of(wildcards.system)):
        return []
    return f"results/{DATASET}/test/cg.npz".format(**dict(wildcards.items()))


def scored_model(wildcards):
    """The model that evaluate reads besides its samples: on 1-D exact systems to
    score its own PMF by quadrature; a model trained across temperatures (a free
    energy A(R, T)) for its <U> and heat capacity against the reference's."""
    method = methods.get(wildcards.method)
    exact = scored_exactly(system_of(wildcards.system))
    if method.produces == "energy" and (exact or method.temperatures == "training"):
        return model_json(wildcards)
    return []


def evaluate_options(wildcards, input):
    options = []
    if input.get("reference"):
        options.append(f"--reference {input.reference}")
    if input.get("model"):
        options.append(f"--model $(dirname {input.model})")
    return " ".join(options)


def pooled_runs(part):
    """Input function of a reference (``part`` train or test): the data sets of its
    independent runs when it pools several (``reference.n_runs`` > 1), else none (its
    job samples it whole)."""

    def runs(wildcards):
        system = system_of(wildcards.system)
        entry = config["systems"][wildcards.system]
        of = test_settings_of if part == "test" else reference_settings
        n = getattr(of(system, entry), "n_runs", 1)
        if n == 1:
            return []
        base = f"results/{REFERENCE}".format(**dict(wildcards.items()))
        base = os.path.join(base, "test") if part == "test" else base
        return [f"{base}/runs/{k}/aa.npz" for k in range(n)]

    return runs


def pool_option(wildcards, input):
    """``--pool`` and the runs' data sets, for a reference that pools several."""
    return ("--pool " + " ".join(input.runs)) if input.runs else ""


def reference_seed(wildcards):
    return reference_run(wildcards)[1].seed


def write_claims(claims_json, path, log):
    """Rule claims_config: the config's claims as JSON, and one line on its log."""
    with open(path, "w") as fh:
        fh.write(f"{claims_json}\n")
    with open(log, "w") as fh:
        fh.write(f"claims_config: {len(config['claims'])} claims to {path}\n")


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
