"""Which Invoke API errors are worth a retry, and which need a person.

Lambda's Invoke API names its errors (``x-amzn-ErrorType``); the ESM retries
throttles and service faults, and stops the consumer with
FUNCTION_CONFIG_NOT_VALID when the function or its permissions are broken. AWS
does not publish that mapping; this table follows each error's documented cause:
a fault that only a configuration change can clear is CONFIG_ERROR.
"""

from __future__ import annotations

from .result import ErrorKind

THROTTLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "EC2ThrottledException",
        "ThrottlingException",
    }
)

PAYLOAD_TOO_LARGE_CODES = frozenset(
    {
        "RequestTooLargeException",
        "SerializedRequestEntityTooLargeException",
    }
)

CONFIG_CODES = frozenset(
    {
        # The function, version or alias does not exist, or cannot be invoked this way.
        "ResourceNotFoundException",
        "NoPublishedVersionException",
        "ModeNotSupportedException",
        "InvalidParameterValueException",
        "InvalidRequestContentException",
        "UnsupportedMediaTypeException",
        "RecursiveInvocationException",
        # The caller may not invoke it.
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        # The function's own configuration is broken.
        "InvalidRuntimeException",
        "InvalidZipFileException",
        "RuntimeVersionDeletedException",
        "RuntimeAliasDeletedException",
        "InvalidSecurityGroupIDException",
        "InvalidSubnetIDException",
        "EC2AccessDeniedException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "EFSMountFailureException",
        "S3FilesMountFailureException",
        "CodeArtifactUserDeletedException",
        "CodeArtifactUserFailedException",
    }
)

_STATUS_FALLBACK = {
    401: ErrorKind.CONFIG_ERROR,
    403: ErrorKind.CONFIG_ERROR,
    404: ErrorKind.CONFIG_ERROR,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    429: ErrorKind.THROTTLED,
}


def classify(code: str | None, status_code: int | None) -> ErrorKind:
    """Kind of a refused Invoke call, by error code first and HTTP status second.

    Anything else (ServiceException, ResourceConflictException while the
    function updates, ENI and SnapStart not ready, EFS faults, ...) is a
    SERVICE_ERROR, retried like Lambda retries it.
    """
    if code in THROTTLE_CODES:
        return ErrorKind.THROTTLED
    if code in PAYLOAD_TOO_LARGE_CODES:
        return ErrorKind.PAYLOAD_TOO_LARGE
    if code in CONFIG_CODES:
        return ErrorKind.CONFIG_ERROR
    return _STATUS_FALLBACK.get(status_code or 0, ErrorKind.SERVICE_ERROR)
