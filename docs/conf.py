"""Sphinx configuration of cgflow's documentation (MyST Markdown pages).

The configuration and command-line references are generated at build time from
the config schema and the argument parser, so they cannot drift from the code.
Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``: every
warning (a broken link, a missing page, a docstring that fails to render) fails it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from cgflow import __version__  # noqa: E402

project = "cgflow"
author = "the cgflow developers"
copyright = "2026, the cgflow developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "**/_generated"]
# The records' fields share names (params in Problem, Trained, FMState, ...):
# autodoc's field lists would otherwise warn that a bare name is ambiguous.
suppress_warnings = ["ref.python"]

autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"cgflow {version}"


def cli_markdown() -> str:
    """The command-line reference: ``cgflow --help`` and each subcommand's help."""
    import argparse

    from cgflow.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same page anywhere
    parser = build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from `cgflow`'s argument parser. Every DAG rule runs one of these "
        "subcommands; each also runs by hand (see [the DAG](../concepts/dag.md)).",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        lines += ["", f"## `cgflow {name}`", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _generate(app) -> None:
    """Write the generated reference pages before Sphinx reads the sources."""
    from cgflow.docs import PAPERS, config_markdown, paper_claims_markdown

    pages = {
        DOCS / "reference" / "configuration.md": config_markdown(),
        DOCS / "reference" / "cli.md": cli_markdown(),
    }
    for paper in PAPERS:
        pages[DOCS / "papers" / "_generated" / f"{paper}.md"] = paper_claims_markdown(
            paper, DOCS.parent
        )
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)


def setup(app):
    app.connect("builder-inited", _generate)
