"""What the measurements run on: the bench databases (:mod:`.databases`), the bench
queues (:mod:`.broker`) and the rows behind the admin overview (:mod:`.overview_data`).
Nothing here is timed."""

from bench.provision.broker import Queues, check_broker, wait_for_broker
from bench.provision.databases import Databases, check_postgres

__all__ = ["Databases", "Queues", "check_broker", "check_postgres", "wait_for_broker"]
