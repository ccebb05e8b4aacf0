"""``/v2.0/extensions``: what this Neutron really supports (clients branch on these aliases, so none is claimed
that is not implemented: no ``external-gateway-multihoming``, which makes the CLI use another gateway API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.network.errors import NotFound

UPDATED = "2013-02-03T10:00:00-00:00"
#: alias -> (name, description)
EXTENSIONS = {
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
                    "specifying whether SNAT should occur on the external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "fip-port-details": ("Floating IP Port Details Extension", "Add port_details attribute to Floating IP "
                         "resource"),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data for each network and "
                                "subnet."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support for network."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
               "access to external networks via a NAT gateway."),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per "
                      "project"),
    "security-group": ("security-group", "The security groups extension."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard "
                                  "attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the revision number of "
                                "neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                          "router, network, policy, subnetpool, port, security_group, floatingip",
                          "Enables to set tag on resources with standard attribute."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                "resources that have Neutron standard attributes."),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group is stateful or not"),
}


def _view(alias: str) -> dict[str, object]:
    name, description = EXTENSIONS[alias]
    return {"name": name, "alias": alias, "description": description, "updated": UPDATED, "links": []}


async def list_extensions(request: Request) -> Response:
    return json_response({"extensions": [_view(a) for a in sorted(EXTENSIONS)]})


async def show_extension(request: Request) -> Response:
    alias = request.path_params["alias"]
    if alias not in EXTENSIONS:
        error = NotFound("Extension", alias)
        error.message = f"Extension with alias {alias} does not exist"
        raise error
    return json_response({"extension": _view(alias)})


routes = [Route("/v2.0/extensions", list_extensions, methods=["GET"]),
          Route("/v2.0/extensions/{alias}", show_extension, methods=["GET"])]
