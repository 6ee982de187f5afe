"""cdk-nag acknowledgments, written with CDK's own ``Validations`` API.

cdk-nag (v3) reads ``Validations.of(construct).acknowledge`` entries; its finding
ids quote the resource as it renders it (``<LogicalId>`` for a Ref,
``<LogicalId.Attr>`` for a GetAtt), so ``rendered`` reproduces that form for the
ARNs this library writes. The library needs no cdk-nag import.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

__all__ = ["acknowledge", "acknowledge_resource_wildcard", "rendered"]

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge an AwsSolutions finding (``IAM5[Resource::*]``...) with its reason."""
    finding = f"{PACK}::{PACK}-{rule}"
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def acknowledge_resource_wildcard(construct: IConstruct, resource: str, reason: str) -> None:
    """IAM5 for one wildcard resource ARN (which may hold tokens)."""
    text = rendered(cdk.Stack.of(construct).resolve(resource))
    acknowledge(construct, f"IAM5[Resource::{text}]", reason)


def rendered(value: Any) -> str:
    """A resolved CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(part) for part in parts)
    return str(value)
