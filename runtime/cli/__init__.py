"""The ``kafka-esm`` command: one module per subcommand.

:mod:`runtime.cli.launcher` is the one place that builds a poller from a mapping and options.
"""
