"""cohortreg.cluster.slurm_probe: the stub scontrol that spares every Snakemake start the SLURM plugin's 9 s wait."""

import os
import subprocess

from cohortreg.cluster.slurm_probe import quick_scontrol_path


def fake_scontrol(folder, controller_up: bool):
    """An scontrol whose `ping` answers at once (up or down) and whose other calls take 3 s, as the real
    one retries a controller that is down; each such call leaves a mark (folder/called)."""
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text("#!/bin/sh\n"
                      f'[ "$1" = ping ] && exit {0 if controller_up else 1}\n'
                      f"touch {folder / 'called'}\n"
                      "sleep 3\necho \"MinJobAge = 300 sec\"\n")
    script.chmod(0o755)
    return str(folder)


def call(path):
    return subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env={**os.environ, "PATH": path})


def test_the_stub_fails_at_once_while_no_controller_answers_and_hands_over_while_one_does(tmp_path):
    system = os.environ["PATH"]
    down = quick_scontrol_path(fake_scontrol(tmp_path / "down", False) + os.pathsep + system)
    r = call(down)
    # the mechanism, not the seconds: the slow real call never ran
    assert r.returncode == 1 and "no SLURM controller answers" in r.stderr and not (tmp_path / "down" / "called").exists()
    up = quick_scontrol_path(fake_scontrol(tmp_path / "up", True) + os.pathsep + system)
    r = call(up)
    assert r.returncode == 0 and "MinJobAge = 300" in r.stdout and (tmp_path / "up" / "called").exists()
    assert quick_scontrol_path(up) == up  # already first on the PATH: not stubbed twice
    assert quick_scontrol_path(str(tmp_path)) == str(tmp_path)  # no scontrol at all: PATH as it was
