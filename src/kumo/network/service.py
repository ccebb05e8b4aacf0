"""The network service (Neutron) as its callers see it: one object holding each resource's service."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.core.config import NetworkOptions
from kumo.core.db import Database
from kumo.network.agents import AgentService
from kumo.network.floating_ips import FloatingIPService
from kumo.network.ip_availability import IpAvailabilityService
from kumo.network.networks import NetworkService
from kumo.network.ports import PortService
from kumo.network.quotas import QuotaService
from kumo.network.routers import RouterService
from kumo.network.security_groups import SecurityGroupService
from kumo.network.subnetpools import SubnetPoolService
from kumo.network.subnets import SubnetService
from kumo.network.tags import TagService


@dataclass
class Neutron:
    networks: NetworkService
    subnets: SubnetService
    subnetpools: SubnetPoolService
    ports: PortService
    security_groups: SecurityGroupService
    quotas: QuotaService
    tags: TagService
    routers: RouterService
    floating_ips: FloatingIPService
    agents: AgentService
    ip_availability: IpAvailabilityService

    @classmethod
    def build(cls, db: Database, options: NetworkOptions) -> Neutron:
        quotas = QuotaService(db, options)
        networks = NetworkService(db, options, quotas)
        groups = SecurityGroupService(db, quotas)
        ports = PortService(db, networks, groups, options.dns_domain)
        pools = SubnetPoolService(db)
        return cls(networks=networks, subnets=SubnetService(db, networks, pools), subnetpools=pools, ports=ports,
                   security_groups=groups,
                   quotas=quotas, tags=TagService(db), routers=RouterService(db, networks, ports),
                   floating_ips=FloatingIPService(db, networks, ports),
                   agents=AgentService(db, options.agent_down_time), ip_availability=IpAvailabilityService(db))
