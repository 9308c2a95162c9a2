# Methods trained once per run (fm, prior, ...). A method that starts from another's
# model (declared in the registry) depends on that model. Checkpoints live outside
# results/, so that Snakemake never deletes them with a failed job's outputs; they are
# removed after success.
rule train:
    input:
        data=f"results/{DATASET}/cg.npz",
        prior=f"results/{DATASET}/{PRIOR}.json",
        init=start_model,
    output:
        model=f"results/{RUN}/model/model.json",
        params=f"results/{RUN}/model/params.msgpack",
        history=f"results/{RUN}/model/train_log.csv",
    log:
        f"logs/{RUN}/train.log",
    benchmark:
        f"benchmarks/{RUN}/train.tsv"
    wildcard_constraints:
        method="|".join(TRAINED_ONCE),
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=training_settings,
        init=start_model_option,
        checkpoint=f"checkpoints/{RUN}/train.ckpt",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} {params.init} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"


# Methods trained at the time step they will be simulated at (re, fm_re): one model
# per dt.
rule train_at_dt:
    input:
        data=f"results/{DATASET}/cg.npz",
        prior=f"results/{DATASET}/{PRIOR}.json",
        init=start_model,
    output:
        model=f"results/{RUN_DT}/model/model.json",
        params=f"results/{RUN_DT}/model/params.msgpack",
        history=f"results/{RUN_DT}/model/train_log.csv",
        figure=f"results/{RUN_DT}/model/train_log.png",
    log:
        f"logs/{RUN_DT}/train.log",
    benchmark:
        f"benchmarks/{RUN_DT}/train.tsv"
    wildcard_constraints:
        method="|".join(TRAINED_PER_DT),
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=720,
    params:
        settings=training_settings,
        init=start_model_option,
        checkpoint=f"checkpoints/{RUN_DT}/train.ckpt",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --dt {wildcards.dt} {params.init}"
        " --checkpoint {params.checkpoint} --out-dir $(dirname {output.model}) 2> {log}"


# Methods trained once on the data of all the system's training temperatures (em): one
# temperature-aware model per run, simulated and scored at every temperature.
rule train_across_temperatures:
    input:
        data=training_data,
        prior=f"results/{ACROSS}/{PRIOR}.json",
    output:
        model=f"results/{ACROSS_RUN}/model/model.json",
        params=f"results/{ACROSS_RUN}/model/params.msgpack",
        history=f"results/{ACROSS_RUN}/model/train_log.csv",
    log:
        f"logs/{ACROSS_RUN}/train.log",
    benchmark:
        f"benchmarks/{ACROSS_RUN}/train.tsv"
    wildcard_constraints:
        method="|".join(TRAINED_ACROSS) or "(?!)",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=training_settings,
        checkpoint=f"checkpoints/{ACROSS_RUN}/train.ckpt",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"


# Data-free methods (rkl): one generator per temperature and seed, fitted to the
# all-atom Boltzmann density; no data set, no prior, n_train 0.
rule train_generator:
    output:
        model=f"results/{GENERATOR}/model/model.json",
        params=f"results/{GENERATOR}/model/params.msgpack",
        history=f"results/{GENERATOR}/model/train_log.csv",
        figure=f"results/{GENERATOR}/model/train_log.png",
    log:
        f"logs/{GENERATOR}/train.log",
    benchmark:
        f"benchmarks/{GENERATOR}/train.tsv"
    wildcard_constraints:
        method="|".join(DATA_FREE) or "(?!)",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=training_settings,
        checkpoint=f"checkpoints/{GENERATOR}/train.ckpt",
    shell:
        "cgflow train-generator --settings {params.settings:q} --method {wildcards.method}"
        " --temperature {wildcards.temperature} --mapping {wildcards.mapping}"
        " --seed {wildcards.seed} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"
