"""A task app whose import fails until a marker file exists (controller back-off tests)."""

from __future__ import annotations

import os

if not os.path.exists(os.environ.get("FLEETSCALE_TEST_IMPORT_OK", "/nonexistent")):
    raise ImportError("tests.apps.flaky_import is not ready yet (its marker file is missing)")

from tests.apps.ledger import app

__all__ = ["app"]
