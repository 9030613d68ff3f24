"""Wheel build hook: the dashboard's third-party browser code (uPlot, Swagger UI) goes into the wheel.

Those files are installed from the npm registry and copied into ``src/trainops/dashboard/static/vendor/`` by
``web/vendor.py`` (git ignores them); a wheel built from a fresh clone runs it first, so every wheel serves its
dashboard offline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

REQUIRED = ("uplot/uPlot.iife.min.js", "swagger-ui/swagger-ui-bundle.js")


class VendorHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        vendor = root / "src" / "trainops" / "dashboard" / "static" / "vendor"
        if version != "editable" and not all((vendor / name).exists() for name in REQUIRED):
            subprocess.run([sys.executable, str(root / "web" / "vendor.py")], check=True)
