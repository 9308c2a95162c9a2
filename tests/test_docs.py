"""The documentation: a strict build, generated references, and results pages made by
``cgflow report`` from a study's own outputs."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from cgflow.docs import config_markdown, paper_claims_markdown
from cgflow.steps.report import parse_time_log, report_step

TIME_LOG = """\
\tCommand being timed: "snakemake --cores 2 --profile workflow/profiles/local"
\tUser time (seconds): 1396.20
\tSystem time (seconds): 193.45
\tElapsed (wall clock) time (h:mm:ss or m:ss): 14:19.33
\tMaximum resident set size (kbytes): 1048576
"""


def sphinx(src, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         *extra, str(src), str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_docs_build_with_warnings_as_errors(repo, tmp_path):
    """Every page, the generated references and the API pages from the docstrings
    build with no warning (a broken link, a missing page or a docstring that fails to
    render would be one)."""
    done = sphinx(repo / "docs", tmp_path / "html")
    assert done.returncode == 0, done.stderr[-4000:]
    for page in (
        "index",
        "getting-started",
        "concepts/statistics",
        "reference/configuration",
        "reference/cli",
        "reference/api",
        "papers/thaler2022",
        "results/index",
    ):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page  # fmt: skip
    api = (tmp_path / "html" / "reference" / "api.html").read_text()
    assert "seed_mean_ci" in api and "Fieller" in api  # rendered from the docstrings


def test_a_page_linking_a_missing_file_fails_the_build(repo, tmp_path):
    """The same configuration on a small site whose one fault is a link to a file
    that does not exist: the build fails, naming that link and nothing else."""
    src = tmp_path / "site" / "docs"
    (src / "concepts").mkdir(parents=True)
    shutil.copy(repo / "docs" / "conf.py", src / "conf.py")
    (tmp_path / "site" / "config").symlink_to(repo / "config")
    pages = ["other", "concepts/dag", "reference/configuration", "reference/cli"]
    (src / "index.md").write_text(
        "# Site\n\nSee [the other page](other.md).\n\n```{toctree}\n" + "\n".join(pages) + "\n```\n"
    )
    (src / "concepts" / "dag.md").write_text("# The DAG\n")  # the generated cli page links it
    (src / "other.md").write_text(
        "# Other\n\nBack to [the index](index.md), or [a page](missing.md).\n"
    )
    bad = sphinx(src, tmp_path / "bad")
    warnings = [line for line in bad.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert bad.returncode != 0 and len(warnings) == 1, bad.stderr[-3000:]
    assert "other.md" in warnings[0] and "missing.md" in warnings[0]


def schema_keys(schema, path=""):
    """Dotted paths of every property in the schema file, as the reference writes them."""
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        key = f"{path}.{name}" if path else name
        out.append(key)
        out += schema_keys(prop, key)
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            out += schema_keys(extra, f"{key}.<name>")
        if isinstance(prop.get("items"), dict):
            out += schema_keys(prop["items"], f"{key}[]")
    return out


def test_the_configuration_reference_lists_every_schema_key(repo):
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    keys = schema_keys(schema)
    assert "claims_min_seeds" in keys and "systems.<name>.simulation" in keys and len(keys) > 40
    text = config_markdown()
    missing = [k for k in keys if f"| `{k}` |" not in text]
    assert not missing
    # the generated blocks too: a method's settings, the simulator's, a system type's
    for key in (
        "methods.re.n_updates",
        "systems.<name>.simulation.target_halfwidth",
        "systems.<name>.potential.forcefield",
        "systems.<name>.evaluation.bins",
    ):
        assert f"| `{key}` |" in text, key  # fmt: skip


def test_version(repo):
    from cgflow import __version__

    done = subprocess.run([sys.executable, "-m", "cgflow.cli", "--version"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == f"cgflow {__version__}"
    pyproject = (repo / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject  # one version, the package's
    citation = yaml.safe_load((repo / "CITATION.cff").read_text())
    assert citation["version"] == __version__ and citation["license"] == "MIT"
    assert "MIT License" in (repo / "LICENSE").read_text()
    assert "## [Unreleased]" in (repo / "CHANGELOG.md").read_text()


def study_folder(tmp_path):
    """A finished study's results folder, as aggregate leaves it, in a git checkout."""
    root = tmp_path / "study"
    results = root / "results"
    (results / "figures").mkdir(parents=True)
    (results / "claims.md").write_text(
        "# Claims under test\n\n| claim | verdict |\n|---|---|\n| RE beats FM | **holds** |\n"
    )
    (results / "benchmark.md").write_text("## dw / x1 / T = 3: pmf_wrmse_kT\n\n| a |\n|---|\n")
    (results / "claims.csv").write_text(
        "claim,effect,ci_low,ci_high,verdict\nRE beats FM,-0.5,-0.7,-0.3,holds\n"
    )
    (results / "benchmark.csv").write_text("system,mean\ndw,0.1\n")
    (results / "figures" / "claims.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    bench = root / "benchmarks" / "dw"
    bench.mkdir(parents=True)
    (bench / "train.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t300\t20.0\n")
    (root / "config.yaml").write_text("seeds: [0]\n")
    (root / "time.txt").write_text(TIME_LOG)
    for args in (
        ["init", "-q"],
        ["add", "config.yaml"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)  # fmt: skip
    return root


def test_report_publishes_a_study_with_its_record(tmp_path):
    root = study_folder(tmp_path)
    docs = tmp_path / "docs" / "results"
    page = report_step(root / "results", docs / "default.md", root / "config.yaml",
                       None, root / "time.txt")  # fmt: skip
    text = page.read_text()
    assert text.startswith("# Results: default")
    assert "## Claims under test" in text and "### dw / x1 / T = 3" in text  # nested
    assert "![claims](default/figures/claims.png)" in text
    assert "14 min 19 s" in text and "1396 s user" in text
    assert "`snakemake --cores 2 --profile workflow/profiles/local`" in text
    record = json.loads((docs / "default" / "record.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    assert record["commit"] == commit and not record["commit_modified"]
    assert record["jobs_benchmarked"] == 1 and record["jobs_cpu_s"] == 20.0
    assert record["time"]["wall_s"] == pytest.approx(859.33)
    assert record["versions"]["cgflow"] and record["machine"]["cores"] >= 1
    assert (docs / "default" / "claims.csv").is_file()
    # a second report replaces the folder whole (no stale figures)
    (root / "results" / "figures" / "claims.png").unlink()
    report_step(root / "results", docs / "default.md", command="snakemake")
    assert not (docs / "default" / "figures" / "claims.png").exists()
    assert "The study made no figures." in page.read_text()
    # a study resumed once: its two invocations' times add up, the larger peak counts
    second = TIME_LOG.replace("14:19.33", "1:00:00").replace("1048576", "2097152")
    (root / "time2.txt").write_text(second)
    page = report_step(root / "results", docs / "default.md",
                       time_log=[root / "time.txt", root / "time2.txt"])  # fmt: skip
    assert "1 h 14 min 19 s over 2 invocations" in page.read_text()
    record = json.loads((docs / "default" / "record.json").read_text())
    assert record["time"]["user_s"] == pytest.approx(2 * 1396.0, abs=1.0)
    assert record["time"]["max_rss_mb"] == 2048.0 and record["time"]["invocations"] == 2


def test_report_refuses_what_is_not_a_study(tmp_path):
    root = study_folder(tmp_path)
    out = tmp_path / "page.md"
    with pytest.raises(ValueError, match="not a folder"):
        report_step(tmp_path / "nowhere", out)
    (root / "results" / "benchmark.md").unlink()
    with pytest.raises(ValueError, match="no benchmark.md"):
        report_step(root / "results", out)
    (root / "results" / "benchmark.md").write_text("x\n")
    (root / "bad.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="bad.txt: not the output of /usr/bin/time -v"):
        parse_time_log(root / "bad.txt")
    with pytest.raises(ValueError, match="a Markdown file"):
        report_step(root / "results", tmp_path / "page.html")
    assert not out.exists()


def test_paper_pages_show_the_published_verdicts(repo, tmp_path):
    """The claims a tier states about a paper, with the verdict of its published
    results page where there is one."""
    root = tmp_path / "repo"
    shutil.copytree(repo / "config", root / "config")
    text = paper_claims_markdown("thaler2022", root)
    assert "RE gives a better free-energy surface than FM (alanine dipeptide)" in text
    assert "not published yet" in text and "EM" not in text
    published = root / "docs" / "results" / "claims"
    published.mkdir(parents=True)
    (published / "claims.csv").write_text(
        "claim,effect,ci_low,ci_high,verdict\n"
        "RE gives a better free-energy surface than FM (alanine dipeptide),"
        "-0.2,-0.5,0.1,undecided\n"
    )
    (published / "record.json").write_text(json.dumps({"summary": "commit abc, 2 cores"}))
    text = paper_claims_markdown("thaler2022", root)
    assert "**undecided** [-0.200, -0.500 to +0.100] ([claims](../results/claims.md))" in text
    assert "commit abc, 2 cores" in text
    # a later slice of the tier (a run with only_systems) gives the latest verdict
    later = root / "docs" / "results" / "claims-alanine"
    later.mkdir()
    (later / "claims.csv").write_text(
        "claim,effect,ci_low,ci_high,verdict\n"
        "RE gives a better free-energy surface than FM (alanine dipeptide),"
        "-0.4,-0.6,-0.2,holds\n"
    )
    (later / "record.json").write_text(json.dumps({"summary": "slice", "finished": "2"}))
    (published / "record.json").write_text(json.dumps({"summary": "whole", "finished": "1"}))
    text = paper_claims_markdown("thaler2022", root)
    assert (
        "**holds** [-0.400, -0.600 to -0.200] ([claims-alanine](../results/claims-alanine.md))"
        in text
    )
    assert "slice" in text and "whole" not in text  # the whole tier's page gave no verdict shown
