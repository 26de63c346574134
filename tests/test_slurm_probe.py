"""cohortreg.slurm_probe: the stub scontrol that spares every Snakemake start the SLURM plugin's 9 s wait."""

import os
import subprocess
import time

from cohortreg.slurm_probe import quick_scontrol_path


def fake_scontrol(folder, controller_up: bool):
    """An scontrol whose `ping` answers at once (up or down) and whose other calls take 3 s, as the real
    one retries a controller that is down."""
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text("#!/bin/sh\n"
                      f'[ "$1" = ping ] && exit {0 if controller_up else 1}\n'
                      "sleep 3\necho \"MinJobAge = 300 sec\"\n")
    script.chmod(0o755)
    return str(folder)


def call(path):
    t0 = time.perf_counter()
    r = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env={**os.environ, "PATH": path})
    return r, time.perf_counter() - t0


def test_the_stub_fails_at_once_while_no_controller_answers_and_hands_over_while_one_does(tmp_path):
    system = os.environ["PATH"]
    down = quick_scontrol_path(fake_scontrol(tmp_path / "down", False) + os.pathsep + system)
    r, seconds = call(down)
    assert r.returncode == 1 and seconds < 1.5 and "no SLURM controller answers" in r.stderr
    up = quick_scontrol_path(fake_scontrol(tmp_path / "up", True) + os.pathsep + system)
    r, seconds = call(up)
    assert r.returncode == 0 and "MinJobAge = 300" in r.stdout and seconds >= 3
    assert quick_scontrol_path(up) == up  # already first on the PATH: not stubbed twice
    assert quick_scontrol_path(str(tmp_path)) == str(tmp_path)  # no scontrol at all: PATH as it was
