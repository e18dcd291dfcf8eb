"""fleetscale: autoscaled fleets of Python worker processes on Redis streams.

The public API is `App`, `Task`, `Producer`, `Overloaded` and `FleetscaleError`.
Importing this package reads no environment, opens no socket and registers no metric.
"""

from fleetscale.errors import FleetscaleError, Overloaded

__all__ = ["FleetscaleError", "Overloaded"]
__version__ = "0.1.0"
