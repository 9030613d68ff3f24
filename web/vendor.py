"""Install the dashboard's third-party browser code from the npm registry and copy it into the package.

``web/package.json`` names the packages and ``web/package-lock.json`` pins them (with their integrity hashes);
``npm ci`` installs exactly that, and the files the pages load are copied into
``src/trainops/dashboard/static/vendor/``, which git ignores: the make targets, the tests and a built wheel carry
them, the repository does not. Run by ``make`` (through its stamp file) and by the wheel build (``hatch_build.py``).

    python web/vendor.py            # install if the lock file changed, then copy
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
VENDOR = WEB.parent / "src" / "trainops" / "dashboard" / "static" / "vendor"

FILES = {
    # uPlot: the time-series charts of the run and compare pages
    "uplot": ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"],
    # Swagger UI: the OpenAPI docs page at /api/v1/docs
    "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"],
}
"""Per npm package, the files the pages load (and the licence that travels with them)."""


def install() -> None:
    """``npm ci`` in web/ unless node_modules already matches the lock file (npm's own marker says so)."""
    lock = WEB / "package-lock.json"
    marker = WEB / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            "web/vendor.py: npm is needed once to install the dashboard's charts and docs page from the npm "
            "registry (Debian: apt-get install -y npm)"
        )
    # --ignore-scripts: nothing the packages ship runs here; these are static files
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)


def copy() -> list[Path]:
    copied = []
    for package, names in FILES.items():
        target = VENDOR / package.removesuffix("-dist")
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            source = WEB / "node_modules" / package / name
            if not source.exists():
                sys.exit(f"web/vendor.py: {source} is missing; delete web/node_modules and run again")
            shutil.copy2(source, target / Path(name).name)
            copied.append(target / Path(name).name)
    return copied


def main() -> None:
    install()
    files = copy()
    print(f"web/vendor.py: {len(files)} files in {VENDOR.relative_to(WEB.parent)}")


if __name__ == "__main__":
    main()
