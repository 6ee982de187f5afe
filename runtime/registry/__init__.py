"""Schema registries: wire formats, writer schemas by id, and the record decoder."""
