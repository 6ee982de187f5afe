"""The mapping's numeric limits, defined once.

Each is the limit of botocore's Lambda service model (which boto3 installs); a unit test
loads that model and fails when a new botocore changes one, so a limit AWS moves is seen
at once rather than refused at deploy time.
"""

from __future__ import annotations

from typing import Final

MAX_BATCH_SIZE: Final = 10_000
MAX_BATCHING_WINDOW_S: Final = 300
MAX_RETRY_ATTEMPTS: Final = 10_000
"""MaximumRetryAttempts: -1 (infinite) or 0 to this."""
MIN_RECORD_AGE_S: Final = 60
"""MaximumRecordAgeInSeconds below this (other than -1) is refused (AWS's documented rule;
the model's minimum is -1)."""
MAX_RECORD_AGE_S: Final = 604_800
MAX_PATTERN_LENGTH: Final = 4096
MAX_FUNCTION_NAME_LENGTH: Final = 256
MAX_TOPIC_LENGTH: Final = 249
MAX_ENDPOINT_LENGTH: Final = 300
MAX_CONSUMER_GROUP_LENGTH: Final = 200
MAX_MINIMUM_POLLERS: Final = 200
MAX_FUNCTION_TIMEOUT_S: Final = 840
"""What a Kafka mapping allows a function's timeout (14 minutes; AWS's docs, not the model)."""
