"""`fleetscale demo`: the whole system on one machine, on an embedded Redis.

`app` holds the demo's task, `load` its built-in trace and producer, `view` the live
terminal view and the summary (pure), and `run` puts them together.
"""
