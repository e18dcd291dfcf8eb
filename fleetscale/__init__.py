"""fleetscale: autoscaled fleets of Python worker processes on Redis streams.

The public API is `App`, `Task`, `Producer`, `Overloaded` and `FleetscaleError`.
Importing this package reads no environment, opens no socket and registers no metric.
"""

from fleetscale.app import App, Task
from fleetscale.errors import FleetscaleError, Overloaded
from fleetscale.producer import Producer

__all__ = ["App", "FleetscaleError", "Overloaded", "Producer", "Task"]
__version__ = "0.1.0"
