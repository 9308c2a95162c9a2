rule evaluate:
    input:
        samples=f"results/{RUN_DT}/samples.npz",
        status=f"results/{RUN_DT}/status.json",
        reference=test_reference,
        model=scored_model,
    output:
        metrics=f"results/{RUN_DT}/metrics.json",
        curves=f"results/{RUN_DT}/curves.npz",
        draws=f"results/{RUN_DT}/bootstrap.npz",
    log:
        f"logs/{RUN_DT}/evaluate.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings("evaluation"),
        options=evaluate_options,
    shell:
        "cgflow evaluate --settings {params.settings:q} --samples {input.samples}"
        " --status {input.status} {params.options} --mapping {wildcards.mapping} --method {wildcards.method}"
        " --n-train {wildcards.n_train} --seed {wildcards.seed} --dt {wildcards.dt}"
        " --temperature {wildcards.temperature} --out {output.metrics} 2> {log}"


# The noise floor: the training reference scored as if it were a model.
rule evaluate_reference:
    input:
        data=f"results/{DATASET}/cg.npz",
        reference=test_reference,
    output:
        metrics=f"results/{DATASET}/reference/metrics.json",
        curves=f"results/{DATASET}/reference/curves.npz",
        draws=f"results/{DATASET}/reference/bootstrap.npz",
    log:
        f"logs/{DATASET}/reference/evaluate.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings("evaluation"),
        n_frames=reference_size,
        seed=reference_seed,
        options=evaluate_options,
    shell:
        "cgflow evaluate --settings {params.settings:q} --samples {input.data}"
        " {params.options} --mapping {wildcards.mapping} --method reference --n-train {params.n_frames}"
        " --seed {params.seed} --temperature {wildcards.temperature}"
        " --out {output.metrics} 2> {log}"


rule aggregate:
    input:
        all_metrics(),
    output:
        summary="results/summary.csv",
        benchmark="results/benchmark.csv",
        benchmark_table="results/benchmark.md",
        differences="results/differences.csv",
        claims="results/claims.md",
        claims_table="results/claims.csv",
        figures=report(
            figures(),
            caption="../report/figures.rst",
            category="Benchmark",
        ),
    log:
        "logs/aggregate.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        claims=lambda wildcards: json.dumps(config["claims"]),
        min_seeds=config["claims_min_seeds"],
        min_basin_samples=config["min_basin_samples"],
        min_crossing=config["min_replicas_crossing"],
    shell:
        "cgflow aggregate --out {output.summary} --figures results/figures"
        " --claims {params.claims:q} --min-seeds {params.min_seeds}"
        " --min-basin-samples {params.min_basin_samples}"
        " --min-replicas-crossing {params.min_crossing} {input} 2> {log}"
