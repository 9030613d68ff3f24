"""The web dashboard: four pages (runs, run, compare, models) and the OpenAPI docs page, as static files.

``trainops serve`` serves them (``trainops.api.dashboard``); they read the REST API and the events stream like any
other client. No build step: plain ES modules and CSS, beside ``static/vendor/`` where ``web/vendor.py`` copies
the third-party code (uPlot, Swagger UI) installed from the npm registry.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
VENDOR_FILES = ("uplot/uPlot.iife.min.js", "uplot/uPlot.min.css", "swagger-ui/swagger-ui-bundle.js")
"""What the pages load from ``vendor/``; :func:`missing_vendor_files` names those absent."""


def missing_vendor_files() -> list[str]:
    """The third-party files this install lacks (a source checkout where ``web/vendor.py`` never ran)."""
    return [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]
