"""``cgflow <step>``: one subcommand per DAG step, each usable without Snakemake.

Settings come from ``--config FILE --system NAME`` (by hand) or ``--settings
JSON`` (as the workflow passes them); either way they are validated first.
"""

from __future__ import annotations

import argparse
import sys


def _study_args(p):
    g = p.add_argument_group("settings (one of)")
    g.add_argument("--config", help="study config YAML")
    g.add_argument("--system", help="system name in the config")
    g.add_argument("--settings", help="JSON settings of one system (as the workflow passes)")


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
    sub = parser.add_subparsers(dest="step", required=True)

    p = sub.add_parser("check-config", help="validate a config file and print its runs")
    p.add_argument("config")

    p = sub.add_parser("sample", help="AA reference sampling at one temperature")
    _study_args(p)
    p.add_argument("--temperature", type=_pos_float, required=True)
    p.add_argument("--out", required=True, help="output .npz (metadata .json beside it)")

    p = sub.add_parser("map", help="map an AA data set to CG positions and forces")
    _study_args(p)
    p.add_argument("--mapping", required=True)
    p.add_argument("--input", required=True, help="AA data set (.npz)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("fit-prior", help="fit the prior on a run's training split")
    _study_args(p)
    p.add_argument("--data", required=True, help="CG data set (.npz)")
    p.add_argument("--n-train", type=_pos_int, required=True)
    p.add_argument("--seed", type=_nonneg_int, required=True)
    p.add_argument("--out", required=True, help="prior JSON")

    p = sub.add_parser("train", help="train a CG model by one method")
    _study_args(p)
    p.add_argument("--method", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--n-train", type=_pos_int, required=True)
    p.add_argument("--seed", type=_nonneg_int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--dt", type=_pos_float, help="CG time step RE trains at (re, fm_re)")
    p.add_argument("--init-model", help="FM model folder fm_re starts from")
    p.add_argument("--checkpoint", help="RE checkpoint file: written, and resumed from")

    p = sub.add_parser("simulate", help="Langevin simulation of a trained model")
    _study_args(p)
    p.add_argument("--model", required=True, help="model folder (model.json, params.msgpack)")
    p.add_argument("--data", required=True, help="CG data set (start frames)")
    p.add_argument("--dt", type=_pos_float, required=True)
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("evaluate", help="score CG samples against the reference")
    _study_args(p)
    p.add_argument("--samples", required=True, help="samples .npz (key positions)")
    p.add_argument("--status", help="status.json of the simulation (omit for data sets)")
    p.add_argument("--reference", help="reference CG data set to compare with")
    p.add_argument(
        "--halves", action="store_true", help="score the second half against the first half"
    )
    p.add_argument("--mapping", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dt", type=float, default=float("nan"))
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--out", required=True, help="metrics.json")

    p = sub.add_parser("aggregate", help="summary.csv and figures from metrics files")
    p.add_argument("--out", required=True, help="summary CSV")
    p.add_argument("--figures", required=True, help="folder for figures")
    p.add_argument("metrics", nargs="+")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"cgflow {args.step}: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from cgflow.study import resolve

    if args.step == "check-config":
        from cgflow.config import load_config, validate_config
        from cgflow.study import method_settings

        config = validate_config(load_config(args.config))
        for name, entry in config["systems"].items():
            data = len(entry["temperatures"]) * len(entry["mappings"])
            if "n_train" not in entry:
                print(f"{name}: {data} reference data sets (no training)")
                continue
            n_models = (
                data
                * len(method_settings(config, entry))
                * len(entry["n_train"])
                * len(config["seeds"])
            )
            n_dt = len(entry["simulation"]["dt"])
            print(f"{name}: {n_models} trained models x {n_dt} time steps")
        print(f"{args.config}: valid")
        return 0
    if args.step == "aggregate":
        from cgflow.analysis.aggregate import aggregate_step

        df = aggregate_step(args.metrics, args.out, args.figures)
        print(f"aggregate: {len(df)} rows -> {args.out}", file=sys.stderr)
        return 0

    study = resolve(args.config, args.system, args.settings)
    if args.step == "sample":
        from cgflow.reference import sample_reference

        sample_reference(study, args.temperature, args.out)
    elif args.step == "map":
        from cgflow.mapping.dataset import map_dataset

        map_dataset(study, args.mapping, args.input, args.out)
    elif args.step == "fit-prior":
        from cgflow.methods import fit_prior_step

        fit_prior_step(study, args.data, args.n_train, args.seed, args.out)
    elif args.step == "train":
        from cgflow.methods import train

        train(
            study,
            args.method,
            args.data,
            args.prior,
            args.n_train,
            args.seed,
            args.out_dir,
            dt=args.dt,
            init_model=args.init_model,
            checkpoint=args.checkpoint,
        )
    elif args.step == "simulate":
        from cgflow.simulate import simulate_step

        status = simulate_step(study, args.model, args.data, args.dt, args.out_dir)
        print(
            f"simulate: stable={status['stable']} steps={status['steps_done']} "
            f"wall={status['wall_time_s']:.1f}s",
            file=sys.stderr,
        )
    elif args.step == "evaluate":
        from pathlib import Path

        from cgflow.analysis.evaluate import evaluate_step

        run = {
            "system": study.system,
            "mapping": args.mapping,
            "method": args.method,
            "n_train": args.n_train,
            "seed": args.seed,
            "dt": args.dt,
            "temperature": args.temperature,
            "run_dir": str(Path(args.samples).parent),
        }
        metrics = evaluate_step(
            study, args.samples, run, args.out, args.status, args.reference, args.halves
        )
        print("evaluate: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
