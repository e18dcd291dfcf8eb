"""A discrete-event simulator of a fleet, for judging scaling policies against traces."""
