rule map_to_cg:
    input:
        aa=f"results/{REFERENCE}/aa.npz",
    output:
        data=f"results/{DATASET}/cg.npz",
    log:
        f"logs/{DATASET}/map.log",
    conda:
        conda_env("openmm")
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings(),
    shell:
        "cgflow map --settings {params.settings:q} --mapping {wildcards.mapping}"
        " --input {input.aa} --out {output.data} 2> {log}"


use rule map_to_cg as map_test_to_cg with:
    input:
        aa=f"results/{REFERENCE}/test/aa.npz",
    output:
        data=f"results/{DATASET}/test/cg.npz",
    log:
        f"logs/{DATASET}/map_test.log",
