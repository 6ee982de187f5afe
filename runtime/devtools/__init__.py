"""Development tools, not in the poller's container image.

A local Apache Kafka, its test PKI, the PBES1 key writer and the demo. The image's build
leaves this package out (``.dockerignore``); ``kafka-esm local-kafka`` and ``demo``
say how to get it when it is missing.
"""
