rule fit_prior:
    input:
        data=f"results/{DATASET}/cg.npz",
    output:
        prior=f"results/{DATASET}/{PRIOR}.json",
    log:
        f"logs/{DATASET}/{PRIOR}.log",
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
        prior=f"results/{ACROSS}/{PRIOR}.json",
    log:
        f"logs/{ACROSS}/{PRIOR}.log",
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
