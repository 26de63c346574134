"""antspyx imported with its heavy subpackages deferred behaves like a plain ``import ants``."""

import json
import subprocess
import sys

LAZY = """
import json, sys
from cohortreg.lazy_ants import import_ants
ants = import_ants()
skipped = [m for m in ("matplotlib", "sklearn", "statsmodels.api", "ants.learn", "ants.plotting", "pandas", "scipy.stats",
                       "requests") if m in sys.modules]
import numpy as np
img = ants.from_numpy(np.arange(1000, dtype="float32").reshape(10, 10, 10))
smoothed = ants.smooth_image(img, 1.0).numpy().sum()
q = float(ants.quantile(img, 0.5))                # ants.math.quantile: statsmodels on first use
ranked = float(ants.rank_intensity(img).numpy().sum())  # scipy.stats.rankdata, a deferred stand-in
stats = ants.label_stats(img, img.new_image_like((np.arange(1000) % 3 + 1).reshape(10, 10, 10).astype("float32")))
volumes = [float(v) for v in stats["Volume"]]     # a pandas DataFrame built through the placeholder
plot = callable(ants.plot)                        # ants.plotting through ants.__getattr__
import ants.learn                                 # an explicit submodule import
decom = callable(ants.learn.sparse_decom2)
try:
    ants.no_such_name
    missing = "no error"
except AttributeError as exc:
    missing = str(exc)
names = sorted(k for k in vars(ants) if not k.startswith("_"))
print(json.dumps(dict(skipped=skipped, smoothed=float(smoothed), q=q, ranked=ranked, volumes=volumes, plot=plot,
                      decom=decom, missing=missing, names=names)))
"""
PLAIN = """
import json, ants
import numpy as np
img = ants.from_numpy(np.arange(1000, dtype="float32").reshape(10, 10, 10))
names = sorted(k for k in vars(ants) if not k.startswith("_"))
stats = ants.label_stats(img, img.new_image_like((np.arange(1000) % 3 + 1).reshape(10, 10, 10).astype("float32")))
print(json.dumps(dict(q=float(ants.quantile(img, 0.5)), smoothed=float(ants.smooth_image(img, 1.0).numpy().sum()),
                      ranked=float(ants.rank_intensity(img).numpy().sum()), volumes=[float(v) for v in stats["Volume"]],
                      names=names)))
"""


def _run(code: str):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_deferred_import_skips_plotting_and_statistics_but_keeps_every_name():
    lazy = _run(LAZY)
    assert lazy["skipped"] == [], f"imported at once although deferred: {lazy['skipped']}"
    assert lazy["plot"] and lazy["decom"]
    assert "no attribute 'no_such_name'" in lazy["missing"]
    plain = _run(PLAIN)
    for key in ("q", "smoothed", "ranked", "volumes"):
        assert lazy[key] == plain[key], key
    assert set(plain["names"]) - set(lazy["names"]) == set(), "names a plain import ants exports but ours does not"
