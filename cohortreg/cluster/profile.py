"""`cohortreg-profile install`: put CohortReg's SLURM profile where Snakemake looks up a bare name.

Snakemake resolves ``--profile NAME`` in the current folder, then the user's config folder
(``~/.config/snakemake``, or ``$XDG_CONFIG_HOME/snakemake``), then the site's
(``/etc/xdg/snakemake``). Installed there as ``slurm``, ``snakemake --profile slurm`` works from
any folder, as cluster users type it; ``--profile profiles/slurm`` from the checkout keeps
working. A profile of the user's own under that name is never replaced without ``--force``
(and then kept beside it as ``config.yaml.bak``).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

PROFILES = Path(__file__).resolve().parents[1] / "resources" / "profiles"


def config_dirs() -> tuple[Path, Path]:
    """(user, site) folders where Snakemake looks profiles up, as Snakemake itself computes them."""
    from snakemake.common import get_appdirs

    dirs = get_appdirs()
    return Path(dirs.user_config_dir), Path(dirs.site_config_dir)


def install(profile: str = "slurm", name: str | None = None, site: bool = False, force: bool = False) -> Path:
    """Copy profile ``profile`` to ``{user or site config}/snakemake/{name}``; return its folder.

    Raises FileExistsError when a different profile already has that name and force is False.
    """
    src = PROFILES / profile / "config.yaml"
    if not src.exists():
        known = sorted(p.name for p in PROFILES.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no CohortReg profile {profile!r}; known: {known}")
    user, system = config_dirs()
    dest = (system if site else user) / (name or profile)
    target = dest / "config.yaml"
    others = [p for p in (dest / "profile.yaml", target) if p.exists()]
    if others and not (len(others) == 1 and others[0] == target and filecmp.cmp(src, target, shallow=False)):
        if not force:
            raise FileExistsError(
                f"a different Snakemake profile is already installed as {name or profile!r} ({others[0]}); "
                f"keep it and install ours under another name (--name cohortreg-{profile}), or replace it "
                "with --force (yours is kept as config.yaml.bak)")
        for p in others:
            shutil.copy2(p, p.with_name(p.name + ".bak"))
            p.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cohortreg-profile", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="install a profile where `snakemake --profile NAME` finds it")
    inst.add_argument("profile", nargs="?", default="slurm", help="which of CohortReg's profiles (default: slurm)")
    inst.add_argument("--name", help="the name to give it (default: the profile's own, e.g. slurm)")
    inst.add_argument("--site", action="store_true", help="for every user of this machine (the site folder)")
    inst.add_argument("--force", action="store_true", help="replace a different profile of that name (kept as .bak)")
    args = ap.parse_args(argv)
    try:
        dest = install(args.profile, args.name, args.site, args.force)
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"cohortreg-profile: {exc}", file=sys.stderr)
        return 2
    print(f"installed {dest / 'config.yaml'}: run `snakemake --profile {dest.name} ...` from the workflow folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
