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
        part="train",
    shell:
        "cgflow sample --settings {params.settings:q} --temperature {wildcards.temperature}"
        " --part {params.part} --out {output.data} 2> {log}"


# The held-out test reference: the same sampler with an independent seed (for MD,
# independent velocities and noise), as long as the entry's test_reference block
# says. Every model is scored on it; training, validation and prior fitting never
# read it (nor that block: changing its length reruns this job and the scoring only).
use rule sample_reference as sample_test_reference with:
    output:
        data="results/{system}/reference/T{temperature}/test/aa.npz",
    log:
        "logs/{system}/reference/T{temperature}/sample_test.log",
    benchmark:
        "benchmarks/{system}/reference/T{temperature}/sample_test.tsv"
    params:
        settings=test_reference_settings,
        part="test",
