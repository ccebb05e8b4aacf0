"""Networks, subnets, ports, security groups and rules: their collections wired to their services."""

from __future__ import annotations

from starlette.routing import Route

from kumo.network.api import attrs
from kumo.network.api.crud import Collection, routes as crud_routes

COLLECTIONS = [
    Collection(attrs.NETWORK, "/v2.0/networks",
               list=lambda n, who: n.networks.list(who), get=lambda n, who, i: n.networks.get(who, i),
               create=lambda n, who, v: n.networks.create(who, v),
               update=lambda n, who, i, v: n.networks.update(who, i, v),
               delete=lambda n, who, i: n.networks.delete(who, i)),
    Collection(attrs.SUBNET, "/v2.0/subnets",
               list=lambda n, who: n.subnets.list(who), get=lambda n, who, i: n.subnets.get(who, i),
               create=lambda n, who, v: n.subnets.create(who, v),
               update=lambda n, who, i, v: n.subnets.update(who, i, v),
               delete=lambda n, who, i: n.subnets.delete(who, i)),
    Collection(attrs.PORT, "/v2.0/ports",
               list=lambda n, who: n.ports.list(who), get=lambda n, who, i: n.ports.get(who, i),
               create=lambda n, who, v: n.ports.create(who, v),
               update=lambda n, who, i, v: n.ports.update(who, i, v),
               delete=lambda n, who, i: n.ports.delete(who, i)),
    Collection(attrs.SECURITY_GROUP, "/v2.0/security-groups",
               list=lambda n, who: n.security_groups.list(who), get=lambda n, who, i: n.security_groups.get(who, i),
               create=lambda n, who, v: n.security_groups.create(who, v),
               update=lambda n, who, i, v: n.security_groups.update(who, i, v),
               delete=lambda n, who, i: n.security_groups.delete(who, i)),
    Collection(attrs.SECURITY_GROUP_RULE, "/v2.0/security-group-rules",
               list=lambda n, who: n.security_groups.list_rules(who),
               get=lambda n, who, i: n.security_groups.get_rule(who, i),
               create=lambda n, who, v: n.security_groups.create_rule(who, v),
               delete=lambda n, who, i: n.security_groups.delete_rule(who, i)),
]

#: Neutron's pecan router also answers the underscore spellings of the dashed collections.
ALIASES = {"/v2.0/security-groups": "/v2.0/security_groups", "/v2.0/security-group-rules": "/v2.0/security_group_rules"}

routes: list[Route] = []
for _collection in COLLECTIONS:
    routes += crud_routes(_collection)
    if _collection.path in ALIASES:
        from dataclasses import replace

        routes += crud_routes(replace(_collection, path=ALIASES[_collection.path]))
