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
    conda:
        conda_env("jax", gpu=True)
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        settings=settings,
    shell:
        "cgflow train --settings {params.settings:q} --method {wildcards.method}"
        " --data {input.data} --prior {input.prior} --n-train {wildcards.n_train}"
        " --seed {wildcards.seed} --out-dir $(dirname {output.model}) 2> {log}"
