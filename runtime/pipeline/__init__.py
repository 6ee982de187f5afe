"""The poller's pipe: source -> filter -> batcher -> event -> invoker -> outcome -> offsets ledger.

The poll loop (:mod:`runtime.pipeline.poller`) owns the consumer thread and the timing;
batch workers settle records and report each outcome to the ledger, which alone decides
what is committed.
"""
