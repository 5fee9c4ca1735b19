"""The documentation: generated reference pages match the code, the site builds strictly (a broken link, a missing
page or anchor fails), the README stays a front door, and no file cites a document that does not exist."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: where the code and the docs cite documents: a path to a .md file of this repository
CITING = ("src", "workflow", "config", "tests", "scripts", "benchmarks", "docs", "profiles", "data", "envs")
CITED = re.compile(r"(?<![\w/.])((?:docs|data|profiles|config|benchmarks|scripts)/[\w/.-]+\.md)\b")


@pytest.mark.dag   # reads the workflow through Snakemake's API
def test_the_reference_pages_are_what_the_code_gives():
    done = subprocess.run([sys.executable, "scripts/docs_reference.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_benchmark_has_its_output_on_the_results_page():
    """Every script of benchmarks/ is in benchmarks/suite.yaml, each entry has its kept output and
    docs/benchmark-results.md is exactly what those outputs give (scripts/docs_benchmarks.py)."""
    done = subprocess.run([sys.executable, "scripts/docs_benchmarks.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_docs_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "site" / "reference" / "configuration" / "index.html").is_file()


def test_the_readme_is_a_front_door_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000, f"README.md has {len(text)} characters; move detail into docs/"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in text, "the README's test command must be the one .ci/run runs"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_no_file_cites_a_document_that_does_not_exist():
    missing = []
    for top in CITING:
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in (".py", ".smk", ".yaml", ".md", ".sh") or "__pycache__" in path.parts:
                continue
            for cited in CITED.findall(path.read_text(errors="replace")):
                if not (ROOT / cited).exists():
                    missing.append(f"{path.relative_to(ROOT)} cites {cited}")
            if "design.md " + "§" in path.read_text(errors="replace"):
                missing.append(f"{path.relative_to(ROOT)} cites design.md by section (docs/design.md has none)")
    assert not missing, "\n".join(missing)


def test_the_ablations_page_shows_every_study_and_table_of_the_embedded_recipe():
    """docs/ablations.md is generated from a run (scripts/docs_results.py --ablations): a study or table added to
    the embedded recipe without rerunning it leaves the page behind, and fails here."""
    import yaml

    page = (ROOT / "docs" / "ablations.md").read_text()
    studies = yaml.safe_load((ROOT / "config" / "recipe" / "tiny.yaml").read_text())["ablations"]
    headings = re.findall(r"^## (\S+)$", page, re.MULTILINE)
    assert sorted(headings) == sorted(studies), "rerun scripts/docs_results.py RUN --ablations after `snakemake ablations`"
    for study, spec in studies.items():
        section = page.split(f"## {study}\n", 1)[1].split("\n## ", 1)[0]
        for table in spec["tables"]:
            assert f"**Ablation {study}, {table}:" in section, f"docs/ablations.md lacks {study}'s {table}"
        seeds = ", ".join(map(str, spec["seeds"]))
        assert f"over seeds [{seeds}]" in section, f"docs/ablations.md: {study} ran on other seeds than the recipe's"
