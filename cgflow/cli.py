"""``cgflow <step>``: one subcommand per DAG step, each usable without Snakemake.

Settings come from ``--config FILE --system NAME`` (by hand) or ``--settings
JSON`` (as the workflow passes them); either way they are validated first.
"""

from __future__ import annotations

import argparse
import sys

from cgflow import __version__

STUDY_ARGS = "--config FILE --system NAME, or --settings JSON"


def _study_args(p):
    g = p.add_argument_group(f"settings (required: {STUDY_ARGS})")
    g.add_argument("--config", help="study config YAML")
    g.add_argument("--system", help="system name in the config")
    g.add_argument("--settings", help="JSON settings of one system (as the workflow passes)")
    p.set_defaults(needs_study=True)


class _StepParser(argparse.ArgumentParser):
    """A step's parser: a missing required option is named together with the study
    settings every such step needs, so that one error lists all that is missing."""

    def error(self, message):
        if message.startswith("the following arguments are required") and (
            self.get_default("needs_study")
        ):
            message += f"; and the study's settings: {STUDY_ARGS}"
        super().error(message)


def _model_folder(text: str) -> str:
    """A model's folder, given as the folder or as its model.json."""
    from pathlib import Path

    path = Path(text)
    return str(path.parent) if path.name == "model.json" else text


def _nonneg_int(text):
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return v


def _pos_int(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return v


def _pos_float(text):
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cgflow {__version__}")
    sub = parser.add_subparsers(dest="step", required=True, parser_class=_StepParser)
    for add in (_study_commands, _data_commands, _training_commands, _sampling_commands,
                _tool_commands):  # fmt: skip
        add(sub)
    return parser


def _study_commands(sub) -> None:
    """Subcommands for the commands about a study: check-config, schema, compare-claims, report."""
    p = sub.add_parser("check-config", help="validate a config file and print its runs")
    p.add_argument("config")

    p = sub.add_parser("schema", help="print the config's JSON schema, generated blocks included")
    p.add_argument(
        "--markdown", action="store_true",
        help="the configuration reference as Markdown (every key, type, default, bounds)",
    )  # fmt: skip

    p = sub.add_parser(
        "compare-claims",
        help="two runs' claims.csv side by side: which verdicts moved (rerun stability)",
    )  # fmt: skip
    p.add_argument("first", help="claims.csv of the first run")
    p.add_argument("second", help="claims.csv of the second run (e.g. rounding perturbed)")
    p.add_argument("--out", help="Markdown file to write (default: print it)")

    p = sub.add_parser(
        "report", help="a documentation page from a finished study's results folder"
    )  # fmt: skip
    p.add_argument("results", help="the study's results folder (claims.md, benchmark.md, ...)")
    p.add_argument("--out", required=True, help="the page to write, e.g. docs/results/claims.md")
    p.add_argument("--config", help="the config the study ran (recorded with its hash)")
    p.add_argument("--command", help="the command that ran the study (else the time log's)")
    p.add_argument(
        "--time-log",
        nargs="+",
        help="output of /usr/bin/time -v around the "
        "study's command; several for a study resumed in several invocations",
    )
    p.add_argument("--title", help="the page's title (default: the page's file name)")
    p.add_argument("--note", help="what else to know about the run (e.g. other load beside it)")


def _data_commands(sub) -> None:
    """Subcommands for the reference and its data sets: sample, map, fit-prior."""
    p = sub.add_parser("sample", help="AA reference sampling at one temperature")
    _study_args(p)
    p.add_argument("--temperature", type=_pos_float, required=True)
    p.add_argument(
        "--part", choices=("train", "test"), default="train",
        help="train: the reference models learn from; test: an independent one they are scored on",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output .npz (metadata .json beside it)")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument(
        "--run", type=_nonneg_int, metavar="K",
        help="of a reference pooled from n_runs independent runs: sample run K only",
    )  # fmt: skip
    runs.add_argument(
        "--pool", nargs="+", metavar="RUN_NPZ",
        help="of a reference pooled from n_runs runs: join their data sets, in run order",
    )  # fmt: skip

    p = sub.add_parser("map", help="map an AA data set to CG positions and forces")
    _study_args(p)
    p.add_argument("--mapping", required=True)
    p.add_argument("--input", required=True, help="AA data set (.npz)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("fit-prior", help="fit the prior on a run's training split")
    _study_args(p)
    p.add_argument(
        "--data", required=True, nargs="+",
        help="CG data set (.npz); several (one per temperature) for a model trained across "
        "temperatures: the budget is shared over them",
    )  # fmt: skip
    p.add_argument("--n-train", type=_pos_int, required=True)
    p.add_argument("--seed", type=_nonneg_int, required=True)
    p.add_argument("--out", required=True, help="prior JSON")


def _training_commands(sub) -> None:
    """Subcommands for the models: train, train-generator, generate."""
    p = sub.add_parser("train", help="train a CG model by one method")
    _study_args(p)
    p.add_argument("--method", required=True)
    p.add_argument(
        "--data", required=True, nargs="+",
        help="CG data set (.npz); one per training temperature for methods trained across "
        "temperatures (em)",
    )  # fmt: skip
    p.add_argument("--prior", required=True)
    p.add_argument("--n-train", type=_pos_int, required=True)
    p.add_argument("--seed", type=_nonneg_int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--dt", type=_pos_float, help="CG time step of methods trained per dt (re)")
    p.add_argument("--init-model", help="start model folder (methods that start from one)")
    p.add_argument("--checkpoint", help="checkpoint file: written, and resumed from")

    p = sub.add_parser(
        "train-generator", help="fit a data-free generator (rkl) at one temperature, no data"
    )
    _study_args(p)
    p.add_argument("--method", required=True)
    p.add_argument("--temperature", type=_pos_float, required=True)
    p.add_argument("--mapping", required=True, help="the CG map its samples are mapped by")
    p.add_argument("--seed", type=_nonneg_int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--checkpoint", help="checkpoint file: written, and resumed from")

    p = sub.add_parser("generate", help="draw CG samples from a trained generator")
    _study_args(p)
    p.add_argument(
        "--model",
        required=True,
        type=_model_folder,
        help="generator folder (model.json, params.msgpack), or its model.json",
    )
    p.add_argument(
        "--n-samples", type=_pos_int,
        help="draws (default: as many as a CG simulation of the system saves frames)",
    )  # fmt: skip
    p.add_argument("--out-dir", required=True)


def _sampling_commands(sub) -> None:
    """Subcommands for the CG samples and their scores: simulate, evaluate."""
    p = sub.add_parser("simulate", help="Langevin simulation of a trained model")
    _study_args(p)
    p.add_argument(
        "--model",
        required=True,
        type=_model_folder,
        help="model folder (model.json, params.msgpack), or its model.json",
    )
    p.add_argument("--data", required=True, help="CG data set (start frames)")
    p.add_argument("--dt", type=_pos_float, required=True)
    p.add_argument(
        "--temperature", type=_pos_float,
        help="simulate at this temperature (a temperature-aware model; default: the model's)",
    )  # fmt: skip
    p.add_argument(
        "--transfer", action="store_true",
        help="allow a model that does not read the temperature to run at another one "
        "(the no-transfer baseline)",
    )  # fmt: skip
    p.add_argument("--out-dir", required=True)
    p.add_argument("--checkpoint", help="checkpoint file: written, and resumed from")

    p = sub.add_parser("evaluate", help="score CG samples against the reference")
    _study_args(p)
    p.add_argument("--samples", required=True, help="samples .npz (key positions)")
    p.add_argument("--status", help="status.json of the simulation (omit for data sets)")
    p.add_argument("--reference", help="held-out test reference (CG data set) to compare with")
    p.add_argument(
        "--model",
        type=_model_folder,
        help="model folder (or its model.json): also score its PMF by quadrature (1-D systems)",
    )
    p.add_argument("--mapping", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dt", type=float, default=float("nan"))
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--out", required=True, help="metrics.json")


def _tool_commands(sub) -> None:
    """Subcommands for bench and aggregate."""
    p = sub.add_parser(
        "bench",
        help="time a fixed synthetic workload (start-up, CG sampling, FM, RE) as JSON",
    )
    p.add_argument("--out", default="bench.json", help="JSON file to write (default bench.json)")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument(
        "--replicas",
        type=_replica_counts,
        default=(),
        help="also time CG sampling at these replica counts, e.g. 32,256,1024 (a GPU pays "
        "per call, so more replicas per call raise the summed rate)",
    )
    p.add_argument(
        "--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="print ratios of two JSON files"
    )
    p = sub.add_parser("aggregate", help="summary.csv and figures from metrics files")
    p.add_argument("--out", required=True, help="summary CSV")
    p.add_argument("--figures", required=True, help="folder for figures")
    claims = p.add_mutually_exclusive_group()
    claims.add_argument(
        "--claims", type=_json_list, default=[],
        help="the config's claims (JSON list): claims.md, claims.csv and a figure",
    )  # fmt: skip
    claims.add_argument(
        "--claims-file", type=_json_list_file, dest="claims", metavar="JSON_FILE",
        help="the same, read from a file (the workflow's results/claims_config.json)",
    )  # fmt: skip
    p.add_argument(
        "--min-seeds", type=int, default=None, metavar="N",
        help="seeds a claim needs for a verdict other than undecided (default: "
        "config claims_min_seeds' default)",
    )  # fmt: skip
    p.add_argument(
        "--min-basin-samples", type=int, default=None, metavar="N",
        help="independent samples of its slowest basin a reference run needs to count as "
        "converged (default: config min_basin_samples' default)",
    )  # fmt: skip
    p.add_argument(
        "--min-replicas-crossing", type=float, default=None, metavar="F",
        help="share of a CG run's replicas that must cross between basins for a claim to "
        "read it (default: config min_replicas_crossing's default)",
    )  # fmt: skip
    p.add_argument("metrics", nargs="+")


# Arguments that name files a step reads: an unexpected error names them.
FILE_ARGS = ("config", "data", "prior", "init_model", "model", "samples", "status",
             "reference", "input", "metrics")  # fmt: skip


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "needs_study", False) and not (args.settings or (args.config and args.system)):
        given = [f"--{k}" for k in ("config", "system") if getattr(args, k)]
        print(f"{parser.prog} {args.step}: error: the study's settings are required: "
              f"{STUDY_ARGS}" + (f" (got only {' '.join(given)})" if given else ""),
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return _run(args)
    except (ValueError, OSError) as err:  # bad input, or an output folder it cannot write
        print(f"cgflow {args.step}: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 -- any other failure: traceback, then one line
        import traceback

        traceback.print_exc(file=sys.stderr)
        given = [
            f"--{name.replace('_', '-')} {value}"
            for name in FILE_ARGS
            if (value := getattr(args, name, None)) and not isinstance(value, list)
        ]
        files = f" (reading {', '.join(given)})" if given else ""
        print(f"cgflow {args.step}: error: {type(err).__name__}: {err}{files}", file=sys.stderr)
        return 1


# Steps that read no method settings: a config file given by hand is cut down to
# what they read before it is checked (the OpenMM side has no JAX for method modules).
SCOPES = {"sample": (), "map": ()}
# Steps that compile JAX programs worth keeping in the persistent cache.
JAX_STEPS = ("train", "simulate", "train-generator", "generate")


def _json_list(text: str) -> list:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("must be a JSON list")
    return value


def _json_list_file(path: str) -> list:
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise argparse.ArgumentTypeError(f"{path}: file not found")
    try:
        return _json_list(file.read_text())
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{path}: {err}") from None


def _aggregate(args) -> int:
    """cgflow aggregate: the deliverables; each run left out is named on stderr."""
    from cgflow import methods
    from cgflow.analysis.aggregate import aggregate_step

    if args.min_seeds is not None and args.min_seeds < 2:
        raise ValueError(f"--min-seeds: needs at least 2 (a spread), got {args.min_seeds}")
    if args.min_basin_samples is not None and args.min_basin_samples < 1:
        raise ValueError(f"--min-basin-samples: needs at least 1, got {args.min_basin_samples}")
    if args.min_replicas_crossing is not None and not 0 <= args.min_replicas_crossing <= 1:
        raise ValueError("--min-replicas-crossing: a share in [0, 1], got "
                         f"{args.min_replicas_crossing}")  # fmt: skip
    given = {"min_seeds": args.min_seeds, "min_basin_samples": args.min_basin_samples,
             "min_replicas_crossing": args.min_replicas_crossing}  # fmt: skip
    extra = {k: v for k, v in given.items() if v is not None}
    df, failed = aggregate_step(args.metrics, args.out, args.figures, methods.names(),
                                args.claims, **extra)  # fmt: skip
    print(f"aggregate: {len(df)} rows -> {args.out}", file=sys.stderr)
    for f in failed:
        print(f"aggregate: left out (in failed_runs.csv): {f.reason}", file=sys.stderr)
    return 0


def _run(args) -> int:
    if args.step == "check-config":
        return _check_config(args.config)
    if args.step == "schema":
        import json

        from cgflow.config import load_schema

        if args.markdown:
            from cgflow.docs import config_markdown

            print(config_markdown(), end="")
        else:
            print(json.dumps(load_schema(), indent=2))
        return 0
    if args.step == "compare-claims":
        return _compare_claims(args)
    if args.step == "report":
        from cgflow.steps.report import report_step

        page = report_step(args.results, args.out, args.config, args.command, args.time_log,
                           args.title, args.note)  # fmt: skip
        print(f"report: {page}", file=sys.stderr)
        return 0
    if args.step == "bench":
        return _bench(args)
    if args.step == "aggregate":
        return _aggregate(args)

    from cgflow.study import resolve

    study = resolve(args.config, args.system, args.settings, SCOPES.get(args.step))
    if args.step in JAX_STEPS:
        from cgflow.runtime import configure_jax

        configure_jax()
    _run_step(study, args)
    return 0


def _compare_claims(args) -> int:
    from pathlib import Path

    import pandas as pd

    from cgflow.analysis.claims import compare_verdicts, comparison_markdown

    tables = []
    for path in (args.first, args.second):
        if not Path(path).is_file():
            raise ValueError(f"{path}: file not found (a claims.csv of cgflow aggregate)")
        table = pd.read_csv(path)
        missing = {"claim", "verdict", "effect", "ci_low", "ci_high"} - set(table.columns)
        if missing:
            raise ValueError(f"{path}: not a claims.csv of cgflow aggregate (lacks "
                             f"{sorted(missing)})")  # fmt: skip
        tables.append(table)
    compared = compare_verdicts(*tables)
    text = comparison_markdown(compared, args.first, args.second)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    flipped = (compared.moved == "flipped").sum()
    print(f"compare-claims: {flipped} verdict(s) flipped", file=sys.stderr)
    return 0


def _run_step(study, args) -> None:
    """Run one DAG step with the study's validated settings."""
    if args.step == "sample":
        from cgflow.steps.sample import sample_step

        sample_step(study, args.temperature, args.out, part=args.part, run=args.run,
                    pool=args.pool)  # fmt: skip
    elif args.step == "map":
        from cgflow.steps.map import map_dataset

        map_dataset(study, args.mapping, args.input, args.out)
    elif args.step == "fit-prior":
        from cgflow.steps.prior import fit_prior_step

        data = args.data if len(args.data) > 1 else args.data[0]
        fit_prior_step(study, data, args.n_train, args.seed, args.out)
    elif args.step == "train":
        from cgflow.steps.train import TrainRequest, train

        data = tuple(args.data) if len(args.data) > 1 else args.data[0]
        request = TrainRequest(args.method, data, args.prior, args.n_train, args.seed,
                               args.out_dir, args.dt, args.init_model, args.checkpoint)  # fmt: skip
        train(study, request)
    elif args.step == "train-generator":
        from cgflow.steps.generate import train_generator

        train_generator(study, args.method, args.temperature, args.mapping, args.seed,
                        args.out_dir, args.checkpoint)  # fmt: skip
    elif args.step == "generate":
        from cgflow.steps.generate import generate_step

        generate_step(study, args.model, args.n_samples, args.out_dir)
    elif args.step == "simulate":
        from cgflow.steps.simulate import SimulateRequest, simulate_step

        request = SimulateRequest(args.model, args.data, args.dt, args.out_dir, args.checkpoint,
                                  args.temperature, args.transfer)  # fmt: skip
        status = simulate_step(study, request)
        print(
            f"simulate: stable={status.stable} steps={status.steps_done} "
            f"wall={status.wall_time_s:.1f}s",
            file=sys.stderr,
        )
    elif args.step == "evaluate":
        _evaluate(study, args)


def _replica_counts(text: str) -> tuple[int, ...]:
    """``--replicas``: positive integers separated by commas."""
    try:
        counts = tuple(int(x) for x in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of positive integers, e.g. 32,256"
        )
    return counts


def _bench(args) -> int:
    import json
    from pathlib import Path

    from cgflow import bench

    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        print("\n".join(bench.compare(before, after)))
        return 0
    result = bench.run_bench(Path(args.out), args.quick, args.replicas)
    s, up = result["sampling"], result["startup"]
    print(
        f"bench: light job {up['light_job_s']:.2f} s, JAX job imports "
        f"{up['jax_job_imports_s']:.2f} s; sampling {s['schnet']['ns_per_day_summed']:.0f} "
        f"ns/day summed (SchNet), {s['prior']['ns_per_day_summed']:.0f} (prior); FM "
        f"{result['fm']['frames_per_s']:.0f} frames/s; RE {result['re']['wall_per_update_s']:.2f}"
        f" s/update; liquid (512 beads) FM {result['liquid']['fm_frames_per_s']:.0f} frames/s,"
        f" sampling {result['liquid']['sampling_ns_per_day_per_replica']:.2f} ns/day per "
        f"replica -> {args.out}",
        file=sys.stderr,
    )
    rate = result["device_rate"]
    peak = rate.get("nominal_cpu_peak")
    print(
        f"bench: SchNet forces {s['schnet']['force_flops_per_replica'] / 1e6:.2f} MFLOP per "
        f"replica, run at {s['schnet']['force_gflop_per_s']:.1f} GFLOP/s; a "
        f"{rate['matmul_n']}^3 matrix product {rate['matmul_gflop_per_s']:.0f} GFLOP/s"
        + (f"; nominal CPU peak {peak['gflop_per_s']:.0f} GFLOP/s" if peak else ""),
        file=sys.stderr,
    )
    for row in s.get("scaling", []):
        print(
            f"bench: {row['model']}, {row['replicas']} replicas: "
            f"{row['ns_per_day_summed']:.0f} ns/day summed",
            file=sys.stderr,
        )
    return 0


def _check_config(path) -> int:
    from cgflow.config import load_config, validate_config
    from cgflow.study import method_settings

    config = validate_config(load_config(path))
    for name, entry in config["systems"].items():
        data = len(entry["temperatures"]) * len(entry["mappings"])
        if "n_train" not in entry:
            print(f"{name}: {data} reference data sets (no training)")
            continue
        from cgflow import methods

        seeds = len(entry.get("seeds", config["seeds"]))
        names = list(method_settings(config, entry))
        free = [m for m in names if methods.get(m).data == "none"]
        n_models = data * (len(names) - len(free)) * len(entry["n_train"]) * seeds
        n_dt = len(entry["simulation"]["dt"])
        line = f"{name}: {n_models} trained models x {n_dt} time steps"
        if free:
            line += (
                f"; {data * len(free) * seeds} data-free generators, sampled ({', '.join(free)})"
            )
        print(line)
    print(f"{path}: valid")
    return 0


def _evaluate(study, args) -> None:
    from pathlib import Path

    from cgflow.analysis.records import RunId
    from cgflow.steps.evaluate import evaluate_step

    run = RunId(system=study.system, mapping=args.mapping, method=args.method,
                n_train=args.n_train, seed=args.seed, dt=args.dt,
                temperature=args.temperature, run_dir=str(Path(args.samples).parent))  # fmt: skip
    metrics = evaluate_step(
        study, args.samples, run, args.out, args.status, args.reference, args.model
    )
    print("evaluate: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
