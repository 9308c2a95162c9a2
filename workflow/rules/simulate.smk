rule simulate_cg:
    input:
        model=model_json,
        params=model_params,
        data=start_data,
    output:
        samples=f"results/{RUN_DT}/samples.npz",
        status=f"results/{RUN_DT}/status.json",
    log:
        f"logs/{RUN_DT}/simulate.log",
    benchmark:
        f"benchmarks/{RUN_DT}/simulate.tsv"
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
        checkpoint=f"checkpoints/{RUN_DT}/simulate.ckpt",
    shell:
        "cgflow simulate --settings {params.settings:q} --model $(dirname {input.model})"
        " --data {input.data} --dt {wildcards.dt} {params.temperature}"
        " --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.samples}) 2> {log}"


# Generators (rkl) are sampled, not simulated: as many independent draws as a CG
# simulation saves frames, under dt0 (no time step).
rule generate:
    input:
        model=f"results/{GENERATOR}/model/model.json",
        params=f"results/{GENERATOR}/model/params.msgpack",
    output:
        samples=f"results/{GENERATOR}/dt0/samples.npz",
        status=f"results/{GENERATOR}/dt0/status.json",
        latent=f"results/{GENERATOR}/dt0/latent.png",
    log:
        f"logs/{GENERATOR}/dt0/generate.log",
    benchmark:
        f"benchmarks/{GENERATOR}/dt0/generate.tsv"
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
