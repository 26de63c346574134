"""Provenance read from the code (cohortreg.provenance), resolved methods, and what a batch item's stamp
covers. No real data needed: these run everywhere."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from cohortreg import provenance
from cohortreg.batches.items import Item, stamp
from cohortreg.registration import METHODS, resolve
from tests.conftest import ROOT

ENGINES = sorted(METHODS)


def fingerprints_of(package_root):
    """Every stage's and every engine's fingerprint, computed by the package found under package_root."""
    code = ("import json; from cohortreg import provenance as p; from cohortreg.registration import METHODS; "
            "print(json.dumps({**{s: p.fingerprint(s) for s in p.STAGES}, "
            "**{f'register/{e}': p.fingerprint('register', e) for e in METHODS}}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=package_root, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(package_root)}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    d = tmp_path_factory.mktemp("pkg")
    shutil.copytree(ROOT / "cohortreg", d / "cohortreg", ignore=shutil.ignore_patterns("__pycache__"))
    return fingerprints_of(d)


def edited(tmp_path, module, text="\n_EDITED = 1  # a statement: comments change nothing\n", new_files=None):
    """The fingerprints of a copy of the package with ``text`` appended to ``module`` (and new files)."""
    d = tmp_path / "edited"
    shutil.copytree(ROOT / "cohortreg", d / "cohortreg", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, content in (new_files or {}).items():
        (d / "cohortreg" / rel).write_text(textwrap.dedent(content))
    with open(d / "cohortreg" / module, "a") as fh:
        fh.write(text)
    return fingerprints_of(d)


def changed(before, after):
    return {k for k in before if before[k] != after.get(k)}


def test_every_stage_and_engine_has_its_own_fingerprint(original):
    assert len(set(original.values())) == len(original) - 1, original  # learned and learned_io: one engine module
    assert original["register/learned"] == original["register/learned_io"]


def test_an_engine_edit_changes_that_engine_and_what_builds_on_its_edited_code_only(original, tmp_path):
    after = edited(tmp_path, "registration/torch_greedy.py")  # appended: no function of it changed
    assert changed(original, after) == {"register/torch"}


def test_an_edit_to_the_report_figures_changes_the_report_only(original, tmp_path):
    assert changed(original, edited(tmp_path, "study/report_figures.py")) == {"report"}


def test_an_edit_of_one_function_in_a_shared_module_changes_its_stage_only(original, tmp_path):
    """subject/stages.py holds three stages' entry functions."""
    src = (ROOT / "cohortreg" / "subject" / "stages.py").read_text()
    d = tmp_path / "fn"
    shutil.copytree(ROOT / "cohortreg", d / "cohortreg", ignore=shutil.ignore_patterns("__pycache__"))
    marker = '    """settings: config[\'affine\']'
    assert marker in src
    (d / "cohortreg" / "subject" / "stages.py").write_text(src.replace(marker, "    _ = 1  # an edit\n" + marker, 1))
    # the template's round 00 is an affine, and labelling starts each atlas with the study's affine
    assert changed(original, fingerprints_of(d)) == {"affine", "template", "labelling"}


def test_a_shared_helper_edit_reaches_every_stage_that_uses_it(original, tmp_path):
    src = (ROOT / "cohortreg" / "io.py").read_text()
    d = tmp_path / "io"
    shutil.copytree(ROOT / "cohortreg", d / "cohortreg", ignore=shutil.ignore_patterns("__pycache__"))
    head, sep, rest = src.partition("def write_text_atomic(")
    assert sep
    (d / "cohortreg" / "io.py").write_text(head + sep + rest.replace(":\n", ":\n    _ = 0  # an edit\n", 1))
    after = changed(original, fingerprints_of(d))
    assert {"preprocess", "skullstrip", "affine", "metrics", "aggregate", "report", "template"} <= after
    assert {f"register/{e}" for e in ENGINES} <= after


def test_a_new_engine_is_covered_without_a_table_entry(tmp_path):
    """A new engine module registered in the method registry: its code is in its fingerprint by itself."""
    engine = '''
        from .torch_greedy import TorchGreedy


        class Mine(TorchGreedy):
            name = "mine"
        '''
    registry = "\nfrom .mine import Mine  # noqa: E402\nMETHODS[Mine.name] = Mine\n"
    base = edited(tmp_path, "registration/__init__.py", registry, {"registration/mine.py": engine})
    d = tmp_path / "edited"
    with open(d / "cohortreg" / "registration" / "mine.py", "a") as fh:
        fh.write("_EDITED = 1  # an edit of the new engine\n")
    after = fingerprints_of(d)
    assert changed(base, after) == {"register/mine"}


def test_comments_formatting_and_where_a_module_is_imported_from_change_nothing(original, tmp_path):
    """Fingerprints hash what the code does: a comment, a docstring, a reformatted line, or an import of the
    same code from another spelling of its module or from a new package folder (as a move needs) reruns nothing."""
    d = tmp_path / "cosmetic"
    shutil.copytree(ROOT / "cohortreg", d / "cohortreg", ignore=shutil.ignore_patterns("__pycache__"))
    f = d / "cohortreg" / "registration" / "torch_greedy.py"
    src = f.read_text()
    assert "from ..lazy_ants import import_ants" in src
    src = src.replace("from ..lazy_ants import import_ants", "from cohortreg.lazy_ants import import_ants  # moved")
    src = src.replace('"""', '"""An edited module docstring. ', 1)
    f.write_text(src.replace("\n\n\n", "\n\n\n# a comment between two definitions\n\n\n", 1) + "\n# a last comment\n")
    (d / "cohortreg" / "newfolder").mkdir()  # a new package folder whose __init__ is a docstring only
    (d / "cohortreg" / "newfolder" / "__init__.py").write_text('"""A new stage folder."""\n')
    greedy = d / "cohortreg" / "torchreg" / "greedy.py"  # moved there, its importers told so
    (d / "cohortreg" / "newfolder" / "moved.py").write_text(greedy.read_text().replace("from .", "from ..torchreg."))
    greedy.unlink()
    for rel, old in (("registration/torch_greedy.py", "..torchreg.greedy"), ("torchreg/affine.py", ".greedy")):
        g = d / "cohortreg" / rel
        assert f"from {old} import" in g.read_text()
        g.write_text(g.read_text().replace(f"from {old} import", "from cohortreg.newfolder.moved import"))
    assert changed(original, fingerprints_of(d)) == set()


def test_an_unknown_engine_is_an_error_not_a_silent_pass():
    with pytest.raises(ValueError, match="engine 'nope'"):
        provenance.fingerprint("register", "nope")
    with pytest.raises(KeyError, match="unknown stage"):
        provenance.fingerprint("no_such_stage")


def test_a_method_is_resolved_once_with_its_engine_and_model():
    r = resolve("torch_fast", {"engine": "torch", "preset": "fast"})
    assert (r.name, r.engine, r.cls) == ("torch_fast", "torch", METHODS["torch"])
    assert r.code() == provenance.fingerprint("register", "torch") and r.model_file == ""
    assert resolve("vxm", {"engine": "learned", "model_file": "/m/model.pt"}).model_file == "/m/model.pt"
    assert resolve("ants").engine == "ants"
    with pytest.raises(ValueError, match="unknown registration method 'nope'"):
        resolve("nope")


def test_a_register_items_stamp_covers_its_engines_code_and_its_model_file(tmp_path):
    model = tmp_path / "model.pt"
    model.write_text("weights 1")

    def item(engine, model_file=""):
        return Item("register c/02->01 [variant]", "register", lambda: None, [], "", "", {"method": "variant"},
                    engine=engine, model=model_file)

    assert stamp(item("torch")) != stamp(item("ants"))  # a variant's stamp follows its engine, not its name
    before = stamp(item("learned", str(model)))
    model.write_text("weights 2, retrained")
    os.utime(model, ns=(1, 1))
    assert stamp(item("learned", str(model))) != before  # a retrained model recomputes its pairs


def test_per_job_and_batched_runs_decide_by_the_same_fingerprint(tmp_path):
    """(e) A per-job register rule reruns when its param METHOD_CODE (the resolved method's code) changes; a
    batch item recomputes when its stamp's fingerprint(stage, engine) does: for every engine and for a
    variant they are one value, so both ways recompute the same pairs."""
    from cohortreg.batches.items import pair_items
    from cohortreg.paths import Layout

    for name, params in [*((e, {}) for e in ENGINES), ("torch_fast", {"engine": "torch", "preset": "fast"}),
                         ("vxm", {"engine": "learned", "model_file": str(tmp_path / "m.pt")})]:
        item = pair_items("register", "c", [("02", "01")], name, params, Layout(str(tmp_path)))[0]
        assert (item.stage, item.engine) == ("register", resolve(name, params).engine)
        assert provenance.fingerprint(item.stage, item.engine) == resolve(name, params).code(), name
