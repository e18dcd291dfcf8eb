"""The worker runtime: a consumer loop in a worker process."""
