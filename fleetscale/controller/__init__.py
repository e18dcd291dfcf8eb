"""The controller: observe the fleet, decide its size, act on local worker processes."""
