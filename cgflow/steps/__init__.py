"""The workflow-facing steps: one module per DAG rule, each called by one ``cgflow``
subcommand. They read and write files; the science lives in the layers below."""
