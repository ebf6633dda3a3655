"""Build a wheelhouse: every wheel of requirements.lock for CPython 3.11 on Linux and on
Windows, plus this project's own wheel and the build backend, so that a machine without
a package index (SCB's MONA) installs with `pip install --no-index --find-links ...`
(docs/real-delivery.md, section 0).

Usage: python tools/wheelhouse.py [--dest wheelhouse] [--platforms linux windows]
Needs a package index where it runs; the folder it writes is what is brought in.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pip platform tags per target; a wheel built for any of them installs there
PLATFORMS = {
    "linux": (
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux_2_28_x86_64",
        "manylinux_2_34_x86_64",
        "linux_x86_64",
    ),
    "windows": ("win_amd64",),
}
BUILD = ("setuptools>=68", "wheel")  # pyproject's build backend, for `pip install -e .`


def download(dest: Path, platform: str, requirements: Path) -> list[str]:
    """The pip command that downloads every pinned wheel for `platform` into dest/platform."""
    tags = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    # --no-deps: the lock pins every package; it also lets pip take the source of a
    # package published without wheels (built below, on this machine: pure Python only)
    return [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--prefer-binary",
        "--python-version", "3.11", "--implementation", "cp", *tags,
        "-r", str(requirements), *BUILD, "-d", str(dest / platform),
    ]  # fmt: skip


def build_sources(folder: Path) -> int:
    """Replace each source archive in `folder` by its wheel (a package without wheels on
    the index; pure Python, so the wheel built here installs anywhere); exit status."""
    for archive in sorted([*folder.glob("*.tar.gz"), *folder.glob("*.zip")]):
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        status = subprocess.run([*command, "-w", str(folder), str(archive)]).returncode
        if status:
            return status
        archive.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Download the wheels and build the project's; exit status of the first failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", default=str(ROOT / "wheelhouse"))
    parser.add_argument("--platforms", nargs="+", choices=list(PLATFORMS), default=list(PLATFORMS))
    parser.add_argument("--requirements", default=str(ROOT / "requirements.lock"))
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    for platform in args.platforms:
        status = subprocess.run(download(dest, platform, Path(args.requirements))).returncode
        if status:
            return status
        status = build_sources(dest / platform)
        if status:
            return status
        own = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        status = subprocess.run([*own, "-w", str(dest / platform), str(ROOT)]).returncode
        if status:
            return status
        print(f"{dest / platform}: {len(list((dest / platform).glob('*.whl')))} wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
