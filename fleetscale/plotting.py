"""matplotlib, loaded only when a plot is drawn (the optional `plot` extra)."""

from __future__ import annotations

from typing import Any

from fleetscale.errors import ConfigurationError


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend; ConfigurationError if missing."""
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency, loaded on demand

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "--plot needs matplotlib: pip install 'fleetscale[plot]'"
        ) from None
    return plt
