"""The network of the Fargate poller: its security-group rules and, in a VPC without
NAT, the endpoints a Fargate task itself needs.

The poller only connects out: to the brokers on their ports and to AWS APIs on 443.
Nothing connects to it (its health check runs inside the container), so its group
has no inbound rule. Without NAT, Fargate pulls the image through the ECR API and
Docker endpoints plus the S3 gateway (image layers live in S3) and ships logs (and
so the scaling metric) through the CloudWatch Logs endpoint; the Lambda, Secrets
Manager and destination endpoints are the mapping's shared ``KafkaVpcEndpoints``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_kafka.network import HTTPS, KafkaVpcEndpoints

__all__ = ["ContainerVpcEndpoints", "connect_poller"]

_CONTAINER_SERVICES: Final = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}


def connect_poller(
    groups: Sequence[ec2.ISecurityGroup], ports: Sequence[int], brokers: Sequence[ec2.IConnectable]
) -> None:
    """Out to the brokers' ports and to 443; a broker security group also lets it in."""
    connections = ec2.Connections(security_groups=list(groups))
    connections.allow_to(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "AWS APIs over HTTPS")
    for broker in brokers:
        for port in ports:
            connections.allow_to(broker, ec2.Port.tcp(port), f"Kafka broker port {port}")


class ContainerVpcEndpoints(Construct):
    """ECR, ECR Docker and CloudWatch Logs endpoints, plus the S3 gateway for image
    layers; one set per VPC and stack (private DNS allows one endpoint per service)."""

    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="ECR and CloudWatch Logs endpoints - 443 from the Kafka pollers",
        )
        self.interface_endpoints = {
            name: ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=vpc,
                service=service,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.security_group],
                subnets=ec2.SubnetSelection(one_per_az=True),
            )
            for name, service in _CONTAINER_SERVICES.items()
        }

    @classmethod
    def of(
        cls, scope: Construct, vpc: ec2.IVpc, kafka_endpoints: KafkaVpcEndpoints
    ) -> ContainerVpcEndpoints:
        """The endpoints of ``vpc`` in ``scope``'s stack, created on first use.

        The S3 gateway is ``kafka_endpoints``'s (an S3 destination uses it too; two
        gateways for S3 in one route table cannot both exist); a narrow policy of it
        always lets ECR's layer bucket be read.
        """
        stack = cdk.Stack.of(scope)
        construct_id = f"ContainerVpcEndpoints{cdk.Names.node_unique_id(vpc.node)}"
        found = stack.node.try_find_child(construct_id)
        if isinstance(found, ContainerVpcEndpoints):
            return found
        endpoints = cls(stack, construct_id, vpc=vpc)
        kafka_endpoints.gateway()
        kafka_endpoints.add_to_policy("S3", _layer_statement(stack))
        return endpoints

    def allow_from(self, group: ec2.ISecurityGroup) -> None:
        """Inbound 443 from a poller's security group."""
        self.security_group.add_ingress_rule(group, ec2.Port.tcp(HTTPS), "HTTPS from a poller")


def _layer_statement(stack: cdk.Stack) -> iam.PolicyStatement:
    """What ECR needs through an S3 gateway endpoint: read its regional layer bucket."""
    bucket = f"arn:{stack.partition}:s3:::prod-{stack.region}-starport-layer-bucket"
    return iam.PolicyStatement(
        sid="EcrImageLayers",
        actions=["s3:GetObject"],
        principals=[iam.AnyPrincipal()],
        resources=[f"{bucket}/*"],
    )
