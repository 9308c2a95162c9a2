rule map_to_cg:
    input:
        aa="results/{system}/reference/T{temperature}/aa.npz",
    output:
        data="results/{system}/{mapping}/T{temperature}/cg.npz",
    log:
        "logs/{system}/{mapping}/T{temperature}/map.log",
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
        aa="results/{system}/reference/T{temperature}/test/aa.npz",
    output:
        data="results/{system}/{mapping}/T{temperature}/test/cg.npz",
    log:
        "logs/{system}/{mapping}/T{temperature}/map_test.log",
