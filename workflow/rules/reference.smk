rule sample_reference:
    input:
        runs=pooled_runs("train"),
    output:
        data=f"results/{REFERENCE}/aa.npz",
    log:
        f"logs/{REFERENCE}/sample.log",
    benchmark:
        f"benchmarks/{REFERENCE}/sample.tsv"
    conda:
        conda_env("openmm", gpu=True)
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=settings(declared=False),
        part="train",
        how=pool_option,
    shell:
        "cgflow sample --settings {params.settings:q} --temperature {wildcards.temperature}"
        " --part {params.part} {params.how} --out {output.data} 2> {log}"


# The held-out test reference: the same sampler with an independent seed (for MD,
# independent velocities and noise), as long as the entry's test_reference block
# says. Every model is scored on it; training, validation and prior fitting never
# read it (nor that block: changing its length reruns this job and the scoring only).
use rule sample_reference as sample_test_reference with:
    input:
        runs=pooled_runs("test"),
    output:
        data=f"results/{REFERENCE}/test/aa.npz",
    log:
        f"logs/{REFERENCE}/sample_test.log",
    benchmark:
        f"benchmarks/{REFERENCE}/sample_test.tsv"
    params:
        settings=test_reference_settings,
        part="test",
        how=pool_option,


# A reference of n_runs > 1 independent runs (reference.n_runs): each run is a job of
# its own (in parallel on a cluster's GPU nodes), and the reference's job pools them.
use rule sample_reference as sample_reference_run with:
    input:
        runs=[],
    output:
        data=f"results/{REFERENCE}/runs/{{run}}/aa.npz",
    log:
        f"logs/{REFERENCE}/runs/{{run}}/sample.log",
    benchmark:
        f"benchmarks/{REFERENCE}/runs/{{run}}/sample.tsv"
    params:
        settings=settings(declared=False),
        part="train",
        how="--run {run}",


use rule sample_reference as sample_test_reference_run with:
    input:
        runs=[],
    output:
        data=f"results/{REFERENCE}/test/runs/{{run}}/aa.npz",
    log:
        f"logs/{REFERENCE}/runs/{{run}}/sample_test.log",
    benchmark:
        f"benchmarks/{REFERENCE}/runs/{{run}}/sample_test.tsv"
    params:
        settings=test_reference_settings,
        part="test",
        how="--run {run}",
