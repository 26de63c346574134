"""The documentation stays true: README.md is short and shows the benchmarks' headline table as the committed
results give it, docs/configuration.md documents every schema key once, docs/outputs.md every pairs.tsv
column once, and every file a page links to exists."""

import re

import yaml

from cohortreg.study.aggregate import PAIR_COLUMNS
from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def schema_keys(node, prefix=""):
    """Every key of the config schema, nested ones dotted; a method's or a resource family's own keys are
    documented with the method (docs/methods.md) and the family's row."""
    keys = []
    for k, v in (node.get("properties") or {}).items():
        keys.append(prefix + k)
        if v.get("type") == "object" and v.get("properties") and not prefix.startswith(("method_params", "resources")):
            keys += schema_keys(v, f"{prefix}{k}.")
    return keys


def table_rows(page, key):
    return re.findall(rf"^\| `{re.escape(key)}` \|", page.read_text(), flags=re.M)


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert "cohortreg-demo demo && snakemake --cores 2" in first_block and "python -m pytest tests" in first_block
    assert "python -m pytest tests" in (ROOT / ".ci" / "run").read_text()  # CI calls the README's test command
    prose = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are file names
    assert not re.search(r"\b[0-9a-f]{7}\b", prose), "the README names no commits (they are in the result files)"


def test_every_schema_key_is_documented_once_with_its_default():
    schema = yaml.safe_load((ROOT / "config" / "schemas" / "config.schema.yaml").read_text())
    page = DOCS / "configuration.md"
    keys = schema_keys(schema)
    assert len(keys) > 100
    missing = [k for k in keys if len(table_rows(page, k)) != 1]
    assert not missing, f"not documented exactly once in {page.name}: {missing}"
    documented = re.findall(r"^\| `([^`]+)` \|", page.read_text(), flags=re.M)
    assert sorted(documented) == sorted(keys), "a row for a key the schema does not have"


def test_every_pairs_tsv_column_is_documented_once():
    missing = [c for c in PAIR_COLUMNS if len(table_rows(DOCS / "outputs.md", c)) != 1]
    assert not missing, missing


def test_every_linked_file_exists():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_the_readme_shows_the_headline_table_the_committed_results_give():
    from bench.summary import headline_table, readme_table

    assert readme_table() == headline_table(), "run python -m bench summary and paste its table into README.md"


def test_the_benchmarks_are_a_suite():
    from bench.harness import SUITE

    modules = sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
    shared = {"__init__", "__main__", "harness", "summary", "learned_study"}
    assert sorted(set(modules) - shared) == sorted(SUITE)
    for name in SUITE:
        text = (ROOT / "bench" / f"{name}.py").read_text()
        assert "sys.path" not in text, name
        other = set(re.findall(r"from bench\.(\w+) import|import bench\.(\w+)", text))
        assert not {m for pair in other for m in pair if m} & set(SUITE), f"{name} imports another benchmark"
        assert re.search(r"def main\(argv", text), name
