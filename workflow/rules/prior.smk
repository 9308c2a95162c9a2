rule fit_prior:
    input:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
    output:
        prior="results/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.json",
    log:
        "logs/{system}/{mapping}/T{temperature}/prior/n{n_train}_s{seed}.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings(
            "prior", "prior_cv_dihedrals", "network.type", "network.cutoff"
        ),
    shell:
        "cgflow fit-prior --settings {params.settings:q} --data {input.data}"
        " --n-train {wildcards.n_train} --seed {wildcards.seed} --out {output.prior} 2> {log}"


# The prior of a model trained across temperatures: fitted on the pooled training
# splits of the training temperatures (the budget shared over them).
rule fit_prior_across_temperatures:
    input:
        data=training_data,
    output:
        prior="results/{system}/{mapping}/multiT/prior/n{n_train}_s{seed}.json",
    log:
        "logs/{system}/{mapping}/multiT/prior/n{n_train}_s{seed}.log",
    conda:
        conda_env("jax")
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings(
            "prior", "prior_cv_dihedrals", "network.type", "network.cutoff"
        ),
    shell:
        "cgflow fit-prior --settings {params.settings:q} --data {input.data}"
        " --n-train {wildcards.n_train} --seed {wildcards.seed} --out {output.prior} 2> {log}"
