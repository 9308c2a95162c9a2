rule simulate_cg:
    input:
        model=model_json,
        params=model_params,
        data=start_data,
    output:
        samples="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/samples.npz",
        status="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/status.json",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/simulate.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/simulate.tsv"
    wildcard_constraints:
        method="|".join(SIMULATED),
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=settings("simulation"),
        temperature=temperature_option,
        checkpoint="checkpoints/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/simulate.ckpt",
    shell:
        "cgflow simulate --settings {params.settings:q} --model $(dirname {input.model})"
        " --data {input.data} --dt {wildcards.dt} {params.temperature}"
        " --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.samples}) 2> {log}"


# Generators (rkl) are sampled, not simulated: as many independent draws as a CG
# simulation saves frames, under dt0 (no time step).
rule generate:
    input:
        model="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/model.json",
        params="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/params.msgpack",
    output:
        samples="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/dt0/samples.npz",
        status="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/dt0/status.json",
        latent="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/dt0/latent.png",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/dt0/generate.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/dt0/generate.tsv"
    wildcard_constraints:
        method="|".join(DATA_FREE) or "(?!)",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=settings("simulation"),
    shell:
        "cgflow generate --settings {params.settings:q} --model $(dirname {input.model})"
        " --out-dir $(dirname {output.samples}) 2> {log}"
