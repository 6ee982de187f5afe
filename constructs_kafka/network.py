"""The network a mapping in a VPC needs: endpoints with narrow policies, and SG rules.

Lambda's pollers run in the mapping's subnets with its security groups. They reach
the brokers on the bootstrap ports, and Lambda, STS, Secrets Manager and the
destination's service on 443, through interface endpoints with private DNS (or a
NAT gateway). Private DNS allows one endpoint per service and VPC, so endpoints
are a shared construct: one per VPC and stack unless the app passes its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_kafka.destinations import OnFailureDestination
from runtime.definition.vocabulary import DestinationKind

__all__ = ["HTTPS", "KafkaVpcEndpoints", "broker_ports", "connect_mapping"]

HTTPS: Final = 443
LAMBDA_PRINCIPAL: Final = "lambda.amazonaws.com"

_INTERFACE_SERVICES: Final = {
    "Lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
}


def broker_ports(bootstrap_servers: Sequence[str]) -> list[int]:
    """Every distinct port of the bootstrap servers, in order; tokens are skipped."""
    ports: list[int] = []
    for server in bootstrap_servers:
        if cdk.Token.is_unresolved(server):
            continue
        text = server.rpartition(":")[2]
        if text.isdigit() and int(text) not in ports:
            ports.append(int(text))
    return ports


def connect_mapping(mapping_groups: Sequence[ec2.ISecurityGroup], ports: Sequence[int]) -> None:
    """The reference's rules: brokers' ports in from and out to the mapping's groups,
    443 out. Nothing is opened inbound to any address range."""
    for group in mapping_groups:
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "AWS APIs over HTTPS")
        for peer in mapping_groups:
            for port in ports:
                group.add_ingress_rule(peer, ec2.Port.tcp(port), f"Kafka broker port {port}")
                group.add_egress_rule(peer, ec2.Port.tcp(port), f"Kafka broker port {port}")


class KafkaVpcEndpoints(Construct):
    """The endpoints Kafka mappings in one VPC use; share it between triggers.

    Lambda and STS always exist; Secrets Manager, SQS, SNS and the S3 gateway are
    added by the first mapping that needs them. Policies grow with each mapping:
    they allow only its role on its secrets and destination.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = vpc
        self._subnets = subnets
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="VPC endpoints of Kafka event source mappings - 443 from the mappings",
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        self.s3_gateway: ec2.GatewayVpcEndpoint | None = None
        for name in ("Lambda", "Sts"):
            self._interface(name)
        self.interface_endpoints["Lambda"].add_to_policy(
            _service_statement("lambda:InvokeFunction")
        )
        self.interface_endpoints["Sts"].add_to_policy(_service_statement("sts:AssumeRole"))

    @classmethod
    def of(cls, scope: Construct, vpc: ec2.IVpc) -> KafkaVpcEndpoints:
        """The endpoints of ``vpc`` in ``scope``'s stack, created on first use."""
        stack = cdk.Stack.of(scope)
        construct_id = f"KafkaVpcEndpoints{cdk.Names.node_unique_id(vpc.node)}"
        found = stack.node.try_find_child(construct_id)
        if isinstance(found, KafkaVpcEndpoints):
            return found
        return cls(stack, construct_id, vpc=vpc)

    def allow_from(self, group: ec2.ISecurityGroup) -> None:
        """Inbound 443 from a mapping's security group."""
        self.security_group.add_ingress_rule(
            group, ec2.Port.tcp(HTTPS), "HTTPS from a Kafka mapping"
        )

    def allow_secret_reads(self, role: iam.IRole, secret_arns: Sequence[str]) -> None:
        """The Secrets Manager endpoint: only ``GetSecretValue`` by the role on the secrets."""
        endpoint = self._interface("SecretsManager")
        endpoint.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                principals=[iam.ArnPrincipal(role.role_arn)],
                resources=list(secret_arns),
            )
        )

    def allow_destination(self, role: iam.IRole, destination: OnFailureDestination) -> None:
        """The destination's endpoint, narrowed to the role and the destination."""
        principal = iam.ArnPrincipal(role.role_arn)
        arn = destination.destination
        if destination.kind is DestinationKind.SQS:
            statement = _role_statement(principal, ["sqs:SendMessage"], [arn])
            self._interface("Sqs").add_to_policy(statement)
        elif destination.kind is DestinationKind.SNS:
            self._interface("Sns").add_to_policy(_role_statement(principal, ["sns:Publish"], [arn]))
        elif destination.kind is DestinationKind.S3:
            gateway = self._s3_gateway()
            gateway.add_to_policy(_role_statement(principal, ["s3:PutObject"], [f"{arn}/*"]))
            gateway.add_to_policy(_role_statement(principal, ["s3:ListBucket"], [arn]))

    def _interface(self, name: str) -> ec2.InterfaceVpcEndpoint:
        if name not in self.interface_endpoints:
            self.interface_endpoints[name] = ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=self.vpc,
                service=_INTERFACE_SERVICES[name],
                private_dns_enabled=True,
                open=False,
                security_groups=[self.security_group],
                subnets=self._subnets or ec2.SubnetSelection(one_per_az=True),
            )
        return self.interface_endpoints[name]

    def _s3_gateway(self) -> ec2.GatewayVpcEndpoint:
        if self.s3_gateway is None:
            self.s3_gateway = ec2.GatewayVpcEndpoint(
                self,
                "S3",
                vpc=self.vpc,
                service=ec2.GatewayVpcEndpointAwsService.S3,
                subnets=[self._subnets] if self._subnets else None,
            )
        return self.s3_gateway


def _service_statement(action: str) -> iam.PolicyStatement:
    """What keeps the mapping working: Lambda's service principal, on ``*``."""
    return iam.PolicyStatement(
        actions=[action], principals=[iam.ServicePrincipal(LAMBDA_PRINCIPAL)], resources=["*"]
    )


def _role_statement(
    principal: iam.IPrincipal, actions: list[str], resources: list[str]
) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=actions, principals=[principal], resources=resources)
