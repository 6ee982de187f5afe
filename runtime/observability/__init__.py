"""What the poller tells the world about itself.

State and LastProcessingResult, counters, lag, the scaling signal, EMF, Prometheus,
status documents, heartbeat and logs. Nothing here imports a command.
"""
