rule sample_reference:
    output:
        data="results/{system}/reference/T{temperature}/aa.npz",
    log:
        "logs/{system}/reference/T{temperature}/sample.log",
    benchmark:
        "benchmarks/{system}/reference/T{temperature}/sample.tsv"
    conda:
        conda_env("openmm", gpu=True)
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=settings(),
    shell:
        "cgflow sample --settings {params.settings:q} --temperature {wildcards.temperature}"
        " --out {output.data} 2> {log}"
