# cgflow: the whole coarse-graining study as one DAG.
# Run: snakemake --cores 2 [--configfile config/smoke.yaml] [--profile workflow/profiles/local]
from snakemake.utils import min_version

min_version("9.0")


# The default study, unless --configfile names another: Snakemake would otherwise
# merge that file into this one, keeping systems and keys it does not mention.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/mapping.smk"
include: "workflow/rules/prior.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/evaluate.smk"


localrules:
    all,
    claims_config,
    publish,


rule all:
    input:
        "results/summary.csv",
        figures(),
