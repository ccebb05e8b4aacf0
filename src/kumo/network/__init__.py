"""Network service (Neutron v2.0): networks, subnets, ports with IPAM, security groups, quotas, tags."""
