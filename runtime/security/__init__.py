"""The mapping's security: secrets and their checks, client settings, the secured source."""
