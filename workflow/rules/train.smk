# Methods trained once per run (fm, prior, ...). A method that starts from another's
# model (declared in the registry) depends on that model. Checkpoints live outside
# results/, so that Snakemake never deletes them with a failed job's outputs; they are
# removed after success.
rule train:
    input:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
        prior="results/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.json",
        init=start_model,
    output:
        model="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/model.json",
        params="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/params.msgpack",
        history="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/train_log.csv",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/train.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/train.tsv"
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
        checkpoint="checkpoints/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/train.ckpt",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} {params.init} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"


# Methods trained at the time step they will be simulated at (re, fm_re): one model
# per dt.
rule train_at_dt:
    input:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
        prior="results/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.json",
        init=start_model,
    output:
        model="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/model/model.json",
        params="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/model/params.msgpack",
        history="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/model/train_log.csv",
        figure="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/model/train_log.png",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/train.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/train.tsv"
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
        checkpoint="checkpoints/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/train.ckpt",
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
        prior="results/{system}/{mapping}/multiT/prior/n{n_train}_s{seed}.json",
    output:
        model="results/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/model/model.json",
        params="results/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/model/params.msgpack",
        history="results/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/model/train_log.csv",
    log:
        "logs/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/train.log",
    benchmark:
        "benchmarks/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/train.tsv"
    wildcard_constraints:
        method="|".join(TRAINED_ACROSS) or "(?!)",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=training_settings,
        checkpoint="checkpoints/{system}/{mapping}/multiT/{method}/n{n_train}_s{seed}/train.ckpt",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"


# Data-free methods (rkl): one generator per temperature and seed, fitted to the
# all-atom Boltzmann density; no data set, no prior, n_train 0.
rule train_generator:
    output:
        model="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/model.json",
        params="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/params.msgpack",
        history="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/train_log.csv",
        figure="results/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/model/train_log.png",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/train.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/train.tsv"
    wildcard_constraints:
        method="|".join(DATA_FREE) or "(?!)",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=training_settings,
        checkpoint="checkpoints/{system}/{mapping}/T{temperature}/{method}/n0_s{seed}/train.ckpt",
    shell:
        "cgflow train-generator --settings {params.settings:q} --method {wildcards.method}"
        " --temperature {wildcards.temperature} --mapping {wildcards.mapping}"
        " --seed {wildcards.seed} --checkpoint {params.checkpoint}"
        " --out-dir $(dirname {output.model}) 2> {log}"
