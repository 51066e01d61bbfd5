"""``dramatiq bench.io_dramatiq``: the dramatiq actor of the ``io`` phase."""

from bench.io_workers import dramatiq_actor

actor = dramatiq_actor()
