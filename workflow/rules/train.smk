rule train:
    input:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
        prior="results/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.json",
    output:
        model="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/model.json",
        params="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/params.msgpack",
        history="results/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/model/train_log.csv",
    log:
        "logs/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/train.log",
    benchmark:
        "benchmarks/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/train.tsv"
    wildcard_constraints:
        method="fm|prior",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=settings("network", method=True),
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --out-dir $(dirname {output.model}) 2> {log}"


# RE trains at the time step it will be simulated at: one model per dt. fm_re starts
# from the FM model of the same run. The checkpoint lives outside results/, so that
# Snakemake never deletes it with a failed job's outputs; it is removed after success.
rule train_re:
    input:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
        prior="results/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.json",
        init=fm_start_model,
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
        method="re|fm_re",
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=720,
    params:
        settings=settings("network", "simulation", method=True),
        init=lambda wildcards, input: (
            f"--init-model $(dirname {input.init})" if input.init else ""
        ),
        checkpoint="checkpoints/{system}/{mapping}/T{temperature}/{method}/n{n_train}_s{seed}/dt{dt}/re.ckpt.npz",
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --dt {wildcards.dt} {params.init}"
        " --checkpoint {params.checkpoint} --out-dir $(dirname {output.model}) 2> {log}"
