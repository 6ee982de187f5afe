"""The mapping definition: AWS's CreateEventSourceMapping JSON and its rules.

Model, defaults, validation, vocabulary and the filter grammar, shared by both halves:
the poller runs it, the CDK constructs validate it at synth time. No I/O here.
"""
