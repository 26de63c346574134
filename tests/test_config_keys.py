"""Every setting reaches the code: each leaf of the config schema is in some rule's params (so
--rerun-triggers params reruns what depends on it) or is listed here with why it decides no output."""

import re

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT

# Keys that decide which jobs exist or how they are scheduled, not what a job computes.
NOT_OUTPUTS = {
    "outdir": "where outputs go; a new outdir is a new study",
    "reference": "which pairs exist: the reference's pairs are new jobs",
    "pairs": "the pairs TSV: which pairs exist",
    "methods": "which methods run (jobs); each method's settings are method_params",
    "auto": "methods: auto: which methods run (jobs), like methods",
    "report.inline_pairs": "which per-pair pictures are items of Snakemake's report, not what a job computes",
    "bids": "which files of a BIDS root are the subjects' T1s: they are the jobs' inputs, tracked as such",
    "batch_size": "how jobs are grouped; a batch keeps items by stamp, results are the same",
    "batch_workers": "how many items of a batch run at once; results are the same",
    "batch_fuse": "whether a batch's metrics run in its register job or their own; results are the same (test_batches)",
    "resources": "threads, memory and runtime requests of the scheduler",
    "slurm": "partition, account and runtime cap of SLURM submissions",
}
CALLS = {"method_params": "method_params", "row_value": None, "method_code": None}


def leaves(schema, prefix=""):
    props = schema.get("properties")
    if not props:
        return [prefix]
    return [leaf for k, v in props.items() for leaf in leaves(v, f"{prefix}.{k}" if prefix else k)]


def params_paths():
    """Config paths that appear in a params: block of any rule, e.g. 'preprocess' or 'preprocess.spacing'."""
    out = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.findall(r"\n    params:\n((?:        .*\n)+)", smk.read_text()):
            for chain in re.findall(r'config((?:\["[a-z_]+"\])+)', block):
                out.add(".".join(re.findall(r'"([a-z_]+)"', chain)))
            out |= {CALLS[f] for f in CALLS if re.search(rf"\b{f}\b", block) and CALLS[f]}
    return out


def test_every_schema_leaf_reaches_a_rule_or_says_why_not():
    schema = yaml.safe_load((ROOT / "config" / "schemas" / "config.schema.yaml").read_text())
    all_leaves = leaves(schema)
    in_params = params_paths()
    covered = lambda leaf, keys: any(leaf == k or leaf.startswith(k + ".") for k in keys)  # noqa: E731
    orphans = [leaf for leaf in all_leaves if not covered(leaf, in_params) and not covered(leaf, NOT_OUTPUTS)]
    assert orphans == [], f"config keys that no rule's params carry: {orphans}"
    stale = [k for k in NOT_OUTPUTS if not any(leaf == k or leaf.startswith(k + ".") for leaf in all_leaves)]
    assert stale == []
    # the listed exemptions are really not params (else the list hides a rerun trigger)
    assert not any(covered(k, in_params) for k in NOT_OUTPUTS)
    assert {"preprocess", "skullstrip", "affine", "qc", "seed", "method_params"} <= in_params
    # and every default in config.yaml is a schema key
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    flat = lambda d, p="": [x for k, v in d.items() for x in (flat(v, f"{p}{k}.") if isinstance(v, dict) and v else [p + k])]  # noqa: E731
    assert [k for k in flat(cfg) if not covered(k, all_leaves) and not any(leaf.startswith(k) for leaf in all_leaves)] == []


def test_the_conda_env_pins_what_pyproject_allows():
    env = yaml.safe_load((ROOT / "envs" / "cohortreg.yaml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*==?\s*([0-9][0-9.]*)$", item)
            if m:
                pins[m.group(1).lower()] = m.group(2)
    aliases = {"torch": "pytorch", "snakemake": "snakemake-minimal"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"dependencies = \[(.*?)\]", pyproject, re.S).group(1)
    for spec in re.findall(r'"([^"]+)"', deps):
        req = Requirement(spec)
        name = aliases.get(req.name.lower(), req.name.lower())
        assert name in pins, f"{req.name} is a dependency in pyproject.toml but not pinned in envs/cohortreg.yaml"
        v = pins[name]
        assert req.specifier.contains(Version(v + ".0" if v.count(".") == 0 else v), prereleases=True), \
            f"envs/cohortreg.yaml pins {name}={v}, which pyproject.toml's {spec!r} refuses"


def test_every_option_a_method_reads_is_one_the_schema_accepts():
    """The reverse of the first test: an option the code reads but the schema lacks is refused at
    validation (learned_io's ``residual`` was, though config.yaml offered it)."""
    import jsonschema

    from cohortreg.registration.torch_greedy import TorchGreedy

    schema = yaml.safe_load((ROOT / "config" / "schemas" / "config.schema.yaml").read_text())
    defaults = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    samples = {**TorchGreedy.presets["default"], "device": "cpu", "seed": 1, "crop_margin_mm": 4, "residual": True,
               "stack": 2}

    def read(module: str) -> set[str]:
        code = (ROOT / "cohortreg" / "registration" / module).read_text()
        return set(re.findall(r'\b(?:params|p)(?:\.get\(|\[)"([a-z_]+)"', code)) - {"model_file"}  # the workflow's own

    greedy = read("torch_greedy.py")
    # learned_io is the torch engine's optimiser after the prediction: it reads both modules' options
    # (stack: a batch job's GPU stack of the torch engine; the learned methods set their own)
    for engine, keys in {"torch": greedy, "learned_io": (greedy - {"stack"}) | read("learned.py")}.items():
        assert {"iterations", "lr"} <= keys
        for key in sorted(keys):
            assert key in samples, f"{engine} reads {key!r}: give it a sample value here"
            extra = {"vxm": {"engine": "learned"}} if engine == "learned_io" else {}
            method = {"engine": engine, key: samples[key], **({"model": "vxm"} if extra else {})}
            cfg = {**defaults, "samples": "s.tsv", "outdir": "out", "method_params": {"m": method, **extra}}
            try:
                jsonschema.validate(cfg, schema)
            except jsonschema.ValidationError as exc:
                raise AssertionError(f"{engine} reads {key!r}, which the schema refuses: {exc.message}") from None


def test_the_torch_affine_library_defaults_are_the_workflows():
    """AffineTorchSettings() is what a bench or a library user gets without settings; it must be what
    the workflow runs (its loss was mi while config.yaml's, the benched choice, is ncc)."""
    from dataclasses import asdict

    from cohortreg.torchreg.affine import AffineTorchSettings

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["affine"]["torch"]
    library = asdict(AffineTorchSettings())
    for key, value in config.items():
        got = list(library[key]) if isinstance(library[key], tuple) else library[key]
        assert got == value, f"affine.torch.{key}: config.yaml {value!r}, AffineTorchSettings {got!r}"
