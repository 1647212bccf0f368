"""The worker process: lease, heartbeat, run, complete, reap, shutdown."""
