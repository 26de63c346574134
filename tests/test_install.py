"""The package installs without the checkout (a wheel, not editable), and the profile installs where Snakemake looks."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from cohortreg.cluster import profile
from tests.conftest import ROOT, run_snakemake


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install --no-deps --target` of this project: a real (non-editable) wheel install."""
    d = tmp_path_factory.mktemp("wheel")
    # From a copy: pip builds in the source tree (build/), which must not land in the checkout.
    src = d / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv", "work", "build", "*.egg-info",
                                                                          "__pycache__", "demo", "results"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                        str(d / "site"), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def env_for(installed):
    return {**os.environ, "PYTHONPATH": str(installed / "site")}


def test_the_wheel_carries_its_schemas_and_runs_the_first_stage(installed, phantom_cohort):
    env = env_for(installed)
    code = ("import cohortreg, cohortreg.sheet.samples as s; print(cohortreg.__file__); "
            f"print(len(s.read_sheet({str(phantom_cohort / 'samples.tsv')!r})))")
    r = subprocess.run([sys.executable, "-c", code], cwd=installed, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    where, n = r.stdout.split()
    assert where.startswith(str(installed / "site")) and n == "3"
    assert (installed / "site" / "cohortreg" / "resources" / "profiles" / "slurm" / "config.yaml").is_file()
    args = ["--cores", "1", "--config", f"samples={phantom_cohort / 'samples.tsv'}", f"outdir={phantom_cohort / 'out'}",
            "methods=[affine]"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
    r = subprocess.run(cmd + ["-n"] + args, cwd=phantom_cohort, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "preprocess_subject" in r.stdout, r.stderr[-2000:]
    target = phantom_cohort / "out" / "ph" / "sub-01" / "anat" / "sub-01_desc-preproc_T1w.nii.gz"
    r = subprocess.run(cmd + [str(target)] + args, cwd=phantom_cohort, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and target.exists(), r.stderr[-2000:]
    log = (phantom_cohort / "out" / "logs" / "preprocess" / "ph" / "sub-01.log").read_text()
    assert "preprocess: done" in log


@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason='the SLURM executor plugin is not installed (pip install -e ".[slurm]")')
def test_profile_install_makes_the_short_name_work_and_never_clobbers(tmp_path, monkeypatch, phantom_cohort):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    dest = profile.install("slurm")
    assert dest == tmp_path / "xdg" / "snakemake" / "slurm" and (dest / "config.yaml").read_text() == \
        (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert profile.install("slurm") == dest  # the same profile again: fine
    (dest / "config.yaml").write_text("jobs: 3\n")  # the user's own profile of that name
    with pytest.raises(FileExistsError, match="--name cohortreg-slurm"):
        profile.install("slurm")
    assert (dest / "config.yaml").read_text() == "jobs: 3\n"
    assert profile.main(["install", "--name", "cohortreg-slurm"]) == 0
    profile.install("slurm", force=True)
    assert (dest / "config.yaml.bak").read_text() == "jobs: 3\n"
    sheet = f"samples={phantom_cohort / 'samples.tsv'}"
    for name in ("slurm", "cohortreg-slurm", "profiles/slurm"):  # short forms from any folder, the long one from the root
        r = run_snakemake("-n", "--profile", name, "--config", sheet, f"outdir={tmp_path / 'out'}", "methods=[affine]",
                          cwd=ROOT, timeout=300)
        assert r.returncode == 0 and "affine_pair" in r.stdout, (name, r.stderr[-2000:])
