"""``kafka-esm serve``: the local Lambda control plane (the event-source-mapping API) and
the supervisor that runs one ``kafka-esm run`` process per mapping."""
