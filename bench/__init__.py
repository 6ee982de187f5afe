"""Benchmarks: scripts that print numbers against the local real Kafka.

Every figure is measured next to a baseline taken in the same run on the same
machine (a bare confluent-kafka loop, one partition, plain aws-cdk-lib), because
absolute numbers on a shared 2-core machine mean little on their own.
Run them all with ``python -m bench.run_all``.
"""
