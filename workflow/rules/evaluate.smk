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


# The config's claims, as the aggregate job reads them: a file rather than a command
# line, so that no job prints the claims when it runs or fails. Rewritten when the
# claims change (their JSON is the rule's params).
rule claims_config:
    output:
        "results/claims_config.json",
    log:
        "logs/claims_config.log",
    params:
        claims=lambda wildcards: json.dumps(config["claims"], indent=1, sort_keys=True),
    run:
        write_claims(params.claims, output[0], log[0])


# aggregate writes every deliverable into its own folder (results/aggregate/), and
# publish copies them into results/ once all exist. Snakemake removes a job's outputs
# before it runs: were results/ aggregate's output, a failed aggregate would leave the
# study without its last summary, tables and figures.
rule aggregate:
    input:
        metrics=all_metrics(),
        claims="results/claims_config.json",
    output:
        **{name.replace(".", "_"): f"{STAGED}/{name}" for name in DELIVERABLES},
        figures=staged(figures()),
    log:
        "logs/aggregate.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        min_seeds=config["claims_min_seeds"],
        min_basin_samples=config["min_basin_samples"],
        min_crossing=config["min_replicas_crossing"],
    shell:
        "cgflow aggregate --out {output.summary_csv} --figures results/aggregate/figures"
        " --claims-file {input.claims} --min-seeds {params.min_seeds}"
        " --min-basin-samples {params.min_basin_samples}"
        " --min-replicas-crossing {params.min_crossing} {input.metrics} 2> {log}"


rule publish:
    input:
        files=[f"{STAGED}/{name}" for name in DELIVERABLES],
        figures=staged(figures()),
    output:
        files=[f"results/{name}" for name in DELIVERABLES],
        figures=report(
            figures(),
            caption="../report/figures.rst",
            category="Benchmark",
        ),
    log:
        "logs/publish.log",
    run:
        publish(
            list(input.files) + list(input.figures),
            list(output.files) + list(output.figures),
            log[0],
        )
