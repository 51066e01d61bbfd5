"""Fault-injection suite: runconsumer subprocesses against the real broker and
database under SIGKILL, forced connection closes, broker restarts, long handlers, poison
messages, database outages and SIGTERM, each ending with an exactly-once check."""
