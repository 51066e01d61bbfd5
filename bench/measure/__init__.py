"""The measurements, one function per measured path:

- :mod:`.publish`: raw publish (P0, P1), ``send --count`` (send-DB) and its same-work
  floor by hand (s-DB);
- :mod:`.raw_consume`: raw consume (a) without a database, and the same-work floors of
  ``runconsumer``: raw prefetch 1 with one receipt INSERT + commit + ack per message
  (b-DB, of p1-DB) and raw high prefetch with one COPY / executemany + commit +
  multiple-ack per batch (c-DB, of pPREFETCH-DB);
- :mod:`.runconsumer`: ``runconsumer`` at high prefetch (pPREFETCH-DB) and at prefetch 1
  (p1-DB);
- :mod:`.memory`: ``runconsumer``'s RSS (mem-DB);
- :mod:`.admin`: the admin overview page (admin-DB);
- :mod:`.retry`: good messages alone and behind an always-failing one with broker-held
  retry delays (retry-base-DB, retry-DB).

:mod:`.phases` says which rows each ``--only`` phase measures, in the table's order;
:mod:`.base` has the :class:`~bench.measure.base.Context` they all get.
"""
