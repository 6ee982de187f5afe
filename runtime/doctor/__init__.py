"""``kafka-esm doctor``: the checks a connection goes through, and their report."""
