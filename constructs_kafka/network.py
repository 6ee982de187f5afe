"""The network a mapping in a VPC needs: security-group rules, and endpoints when asked.

Lambda's on-demand pollers run in the mapping's subnets with its security groups.
They reach the brokers on the bootstrap ports, and Lambda, STS, Secrets Manager and
the destination's service on 443, through a NAT gateway or interface endpoints with
private DNS. Private DNS changes those services for the whole VPC, so endpoints are
made only when asked or when the subnets are isolated, and are a shared construct:
one per VPC and stack unless the app passes its own. Provisioned pollers need none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_kafka.destinations import OnFailureDestination
from constructs_kafka.permissions import secret_arn_for_policies
from constructs_kafka.props import NetworkAccess
from runtime.definition.vocabulary import DestinationKind

__all__ = [
    "HTTPS",
    "KafkaVpcEndpoints",
    "broker_ports",
    "choose_access",
    "connect_mapping",
    "endpoint_warning",
    "is_isolated",
    "open_existing_endpoints",
]

HTTPS: Final = 443
LAMBDA_PRINCIPAL: Final = "lambda.amazonaws.com"

_INTERFACE_SERVICES: Final = {
    "Lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
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


def connect_mapping(
    connections: ec2.Connections, ports: Sequence[int], brokers: Sequence[ec2.IConnectable]
) -> None:
    """AWS's rules: 443 out, and the broker ports out to the brokers and into a broker
    security group from the mapping. Without ``brokers`` the brokers are taken to share
    the mapping's groups (the MSK-style setup): the ports are open within them."""
    connections.allow_to(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "AWS APIs over HTTPS")
    for port in ports:
        description = f"Kafka broker port {port}"
        if not brokers:
            connections.allow_internally(ec2.Port.tcp(port), description)
        for broker in brokers:
            connections.allow_to(broker, ec2.Port.tcp(port), description)


def open_existing_endpoints(
    mapping_groups: Sequence[ec2.ISecurityGroup], endpoint_groups: Sequence[ec2.ISecurityGroup]
) -> None:
    """Endpoints made elsewhere: 443 into their security groups from the mapping's."""
    for endpoint_group in endpoint_groups:
        for group in mapping_groups:
            endpoint_group.add_ingress_rule(group, ec2.Port.tcp(HTTPS), "HTTPS from Kafka pollers")


def choose_access(
    requested: NetworkAccess | None, *, provisioned: bool, isolated: bool
) -> NetworkAccess | None:
    """The network access a mapping uses; None when it needs no path to AWS APIs.

    Provisioned pollers reach AWS outside the VPC, so they need no endpoint nor NAT.
    Unrequested, endpoints are made only in isolated subnets, where nothing else works.
    """
    if provisioned:
        return None
    if requested is not None:
        return requested
    return NetworkAccess.VPC_ENDPOINTS if isolated else NetworkAccess.NAT_GATEWAY


def is_isolated(vpc: ec2.IVpc, subnets: Sequence[ec2.ISubnet]) -> bool:
    """Every selected subnet is an isolated one (no NAT, no internet gateway)."""
    isolated = {s.subnet_id for s in vpc.isolated_subnets}
    return bool(subnets) and all(s.subnet_id in isolated for s in subnets)


def endpoint_warning(vpc: ec2.IVpc, services: Sequence[str]) -> str:
    """What creating private-DNS endpoints changes, for the synth warning."""
    return (
        f"creates VPC endpoints with private DNS for {', '.join(services)} in VPC "
        f"{vpc.node.path}: every workload in that VPC then reaches these services through "
        "them (AWS's default, open endpoint policy is kept unless narrow_policies=True); "
        "pass network_access=NAT_GATEWAY or EXISTING_ENDPOINTS (or provisioned_pollers, "
        "which need no endpoints) to create none"
    )


class KafkaVpcEndpoints(Construct):
    """The endpoints Kafka mappings in one VPC use; share it between triggers.

    Lambda and STS always exist; Secrets Manager, SQS, SNS, Glue (a Glue schema registry)
    and the S3 gateway are added by the first mapping that needs them. Interface endpoints
    go into ``subnets`` and the S3 gateway onto their route tables only (the triggers pass
    their own subnets; @default - one subnet per AZ of the VPC's private subnets, and every
    route table).
    With ``narrow_policies`` the endpoint policies allow only Lambda's service principal
    and each mapping's role on its secrets and destination: right for a VPC dedicated to
    the mappings, wrong for a shared one (other workloads lose these services).
    @default - AWS's default, open policies.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection | None = None,
        narrow_policies: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = vpc
        self.narrow_policies = narrow_policies
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
        self._interface("Lambda", _service_statement("lambda:InvokeFunction"))
        self._interface("Sts", _service_statement("sts:AssumeRole"))

    @classmethod
    def of(
        cls, scope: Construct, vpc: ec2.IVpc, subnets: ec2.SubnetSelection | None = None
    ) -> KafkaVpcEndpoints:
        """The endpoints of ``vpc`` in ``scope``'s stack, created on first use (in the
        first user's ``subnets``)."""
        stack = cdk.Stack.of(scope)
        construct_id = f"KafkaVpcEndpoints{cdk.Names.node_unique_id(vpc.node)}"
        found = stack.node.try_find_child(construct_id)
        if isinstance(found, KafkaVpcEndpoints):
            return found
        return cls(stack, construct_id, vpc=vpc, subnets=subnets)

    @property
    def service_names(self) -> list[str]:
        """The services the endpoints serve so far, for messages."""
        gateway = ["S3"] if self.s3_gateway is not None else []
        return [*self.interface_endpoints, *gateway]

    def allow_from(self, group: ec2.ISecurityGroup) -> None:
        """Inbound 443 from a mapping's security group."""
        self.security_group.add_ingress_rule(
            group, ec2.Port.tcp(HTTPS), "HTTPS from a Kafka mapping"
        )

    def allow_invoke(self, principal: iam.IPrincipal, function_arn: str) -> None:
        """The Lambda endpoint, for a principal other than Lambda's own (the poller)."""
        statement = _role_statement(principal, ["lambda:InvokeFunction"], [function_arn])
        self._add(self.interface_endpoints["Lambda"], statement)

    def allow_secret_reads(
        self, role: iam.IRole, secrets: Sequence[secretsmanager.ISecret]
    ) -> None:
        """The Secrets Manager endpoint: only ``GetSecretValue`` by the role on the secrets."""
        arns = [secret_arn_for_policies(s) for s in secrets]
        statement = _role_statement(
            iam.ArnPrincipal(role.role_arn), ["secretsmanager:GetSecretValue"], arns
        )
        self._add(self._interface("SecretsManager"), statement)

    def allow_registry_reads(self, role: iam.IRole, registry_arn: str) -> None:
        """The Glue endpoint, for a Glue schema registry: schema reads by the role on the
        registry and its schemas."""
        schemas = registry_arn.replace(":registry/", ":schema/", 1) + "/*"
        statement = _role_statement(
            iam.ArnPrincipal(role.role_arn),
            ["glue:GetRegistry", "glue:GetSchemaVersion"],
            [registry_arn, schemas],
        )
        self._add(self._interface("Glue"), statement)

    def allow_destination(self, role: iam.IRole, destination: OnFailureDestination) -> None:
        """The destination's endpoint, narrowed to the role and the destination."""
        principal = iam.ArnPrincipal(role.role_arn)
        arn = destination.destination
        if destination.kind is DestinationKind.SQS:
            self._add(
                self._interface("Sqs"), _role_statement(principal, ["sqs:SendMessage"], [arn])
            )
        elif destination.kind is DestinationKind.SNS:
            self._add(self._interface("Sns"), _role_statement(principal, ["sns:Publish"], [arn]))
        elif destination.kind is DestinationKind.S3:
            gateway = self.gateway()
            self._add(gateway, _role_statement(principal, ["s3:PutObject"], [f"{arn}/*"]))
            self._add(gateway, _role_statement(principal, ["s3:ListBucket"], [arn]))

    def add_to_policy(self, endpoint: str, statement: iam.PolicyStatement) -> None:
        """A statement on one endpoint's policy (``Sqs``, ``S3``...), kept only with
        ``narrow_policies``: on an open policy one statement would close the rest."""
        target = self.gateway() if endpoint == "S3" else self._interface(endpoint)
        self._add(target, statement)

    def gateway(self) -> ec2.GatewayVpcEndpoint:
        """The S3 gateway endpoint, on the route tables of the endpoints' subnets."""
        if self.s3_gateway is None:
            self.s3_gateway = ec2.GatewayVpcEndpoint(
                self,
                "S3",
                vpc=self.vpc,
                service=ec2.GatewayVpcEndpointAwsService.S3,
                subnets=[self._subnets] if self._subnets else None,
            )
        return self.s3_gateway

    def _add(
        self,
        endpoint: ec2.InterfaceVpcEndpoint | ec2.GatewayVpcEndpoint,
        statement: iam.PolicyStatement,
    ) -> None:
        if self.narrow_policies:
            endpoint.add_to_policy(statement)

    def _interface(
        self, name: str, statement: iam.PolicyStatement | None = None
    ) -> ec2.InterfaceVpcEndpoint:
        if name not in self.interface_endpoints:
            endpoint = ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=self.vpc,
                service=_INTERFACE_SERVICES[name],
                private_dns_enabled=True,
                open=False,
                security_groups=[self.security_group],
                subnets=self._subnets or ec2.SubnetSelection(one_per_az=True),
            )
            self.interface_endpoints[name] = endpoint
            if statement is not None:
                self._add(endpoint, statement)
        return self.interface_endpoints[name]


def _service_statement(action: str) -> iam.PolicyStatement:
    """What keeps the mapping working: Lambda's service principal, on ``*``."""
    return iam.PolicyStatement(
        actions=[action], principals=[iam.ServicePrincipal(LAMBDA_PRINCIPAL)], resources=["*"]
    )


def _role_statement(
    principal: iam.IPrincipal, actions: list[str], resources: list[str]
) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=actions, principals=[principal], resources=resources)
