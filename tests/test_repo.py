"""The README's commands are the ones CI runs."""

import re


def test_ci_runs_exactly_the_readme_test_command(repo):
    readme = (repo / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    ci = (repo / ".ci" / "run").read_text().splitlines()
    assert test_cmd.strip() in [line.strip() for line in ci]
    main_cmd = next(b for b in blocks if "snakemake --cores" in b)
    assert re.search(r"pip install (--[\w-]+ )*-e \. ", main_cmd), main_cmd  # the package itself
