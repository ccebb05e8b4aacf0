"""Compute's side of networking (Nova's ``nova/network/neutron.py``): ports for instances, through the network API.

Three moments, as in Nova:

* the compute API checks what ``POST /servers`` asked for with the
  *caller's* token (:meth:`NetworkAPI.validate_requested`), so a network
  the caller cannot see is a 400 before anything is written;
* the compute agent of the chosen host makes and binds the ports with the
  *service* token (:meth:`NetworkAPI.allocate`): ``binding:host_id`` is
  admin-only, and a build must not fail because the caller's token expired
  while it waited. Ports are made in the instance's project, so they count
  against its quota;
* deleting the instance deletes the ports compute made and unbinds the ones
  the caller brought (``preserve_on_delete``, Nova's rule).

What compute remembers of the ports is ``Instance.network_info`` (Nova's
``instance_info_caches``): a list of VIF dicts from which the server view's
``addresses``, the driver's NICs and ``network_data.json`` are derived. The
network service asks for a refresh when something compute cannot see
changes (a floating IP associated), see :meth:`NetworkAPI.refresh`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from kumo.compute.context import RequestContext
from kumo.core import errors
from kumo.core.clients import NetworkClient, ServiceAuth

VIF = dict[str, Any]
NetworkRequest = dict[str, Any]  # {"network_id"?, "port_id"?, "fixed_ip"?, "tag"?}
MULTIPLE_NETWORKS = "Multiple possible networks found, use a Network ID to be more specific."


class NetworkAPI:
    """Ports for instances; ``client`` talks to the network API, ``service`` gives the service token."""

    def __init__(self, client: NetworkClient, service: ServiceAuth) -> None:
        self.client = client
        self.service = service

    async def _token(self) -> str:
        return await self.service.token()

    # -- the compute API, with the caller's token --------------------------------------------------

    async def validate_requested(self, ctx: RequestContext, requested: list[dict[str, Any]] | str | None,
                                 max_count: int, security_groups: list[str]) -> list[NetworkRequest]:
        """Nova's ``validate_networks``: what the build will ask for, or the 4xx the caller gets now.

        ``auto`` (and no ``networks`` before 2.37) picks the project's only
        usable network (its own, or shared ones); several are a 409, none
        means a server without NICs (there is no auto-allocated topology).
        """
        token = ctx.auth_token
        if requested == "none":
            return []
        if requested is None or requested == "auto":
            candidates = await self._usable_networks(token, ctx.project_id)
            if len(candidates) > 1:
                raise errors.Conflict(MULTIPLE_NETWORKS)
            wanted: list[NetworkRequest] = [{"network_id": candidates[0]["id"]}] if candidates else []
        else:
            wanted = [_request(entry) for entry in requested]
        for entry in wanted:
            if entry.get("port_id"):
                await self._check_port(ctx, entry, max_count)
            else:
                await self._check_network(ctx, entry["network_id"])
        if wanted and security_groups:
            await self._check_groups(ctx, security_groups)
        return wanted

    async def _check_port(self, ctx: RequestContext, entry: NetworkRequest, max_count: int) -> None:
        port_id = entry["port_id"]
        try:
            port = await self.client.get_port(ctx.auth_token, port_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Port id {port_id} could not be found.") from None
        if port.get("device_id"):
            raise errors.Conflict(f"Port {port_id} is still in use.")
        if max_count > 1:
            raise errors.BadRequest("Unable to launch multiple instances with a single configured port ID. "
                                    "Please launch your instance one by one with different ports.")
        entry["network_id"] = port["network_id"]

    async def _check_network(self, ctx: RequestContext, network_id: str) -> None:
        try:
            network = await self.client.get_network(ctx.auth_token, network_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Network {network_id} could not be found.") from None
        _refuse_external(ctx, network)

    async def _usable_networks(self, token: str | None, project_id: str | None) -> list[dict[str, Any]]:
        """Nova's ``_get_available_networks`` without ids: the project's own networks (not external), then shared
        ones."""
        found = [n for n in await self.client.list_networks(token, project_id=project_id)
                 if not n.get("router:external")]
        seen = {n["id"] for n in found}
        return found + [n for n in await self.client.list_networks(token, shared=True) if n["id"] not in seen]

    async def _check_groups(self, ctx: RequestContext, names: list[str]) -> None:
        for name in names:
            if not await self._find_groups(ctx.auth_token, name, ctx.project_id):
                raise errors.BadRequest(f"Unable to find security_group with name or id '{name}'")

    async def _find_groups(self, token: str | None, name: str, project_id: str | None) -> list[str]:
        """Ids of the project's groups called ``name`` (or with that id)."""
        found = await self.client.list_security_groups(token, project_id=project_id, name=name)
        if not found:
            try:
                found = [g for g in await self.client.list_security_groups(token, id=name)
                         if g.get("project_id") == project_id]
            except errors.BadRequest:
                found = []
        return [g["id"] for g in found]

    # -- the compute agent, with the service token --------------------------------------------------

    async def allocate(self, instance: Any, host: str, requested: list[NetworkRequest],
                       security_groups: list[str]) -> list[VIF]:
        """Make (or take over) the instance's ports, bound to ``host``; the VIFs as compute keeps them.

        On failure every port made here is deleted again and taken-over ports
        are released, so a rescheduled build starts clean.
        """
        token = await self._token()
        owner = f"compute:{instance.availability_zone or 'nova'}"
        binding = {"device_id": instance.uuid, "device_owner": owner, "binding:host_id": host}
        made: list[str] = []
        taken: list[str] = []
        try:
            group_ids: list[str] | None = None  # None: the network service applies the project's default group
            if security_groups and security_groups != ["default"]:
                group_ids = []
                for name in security_groups:
                    group_ids += await self._find_groups(token, name, instance.project_id)
            ports = []
            networks: dict[str, dict[str, Any]] = {}
            for entry in requested:
                if entry.get("port_id"):
                    port = await self.client.update_port(token, entry["port_id"], binding)
                    taken.append(port["id"])
                    port["_preserve"] = True
                else:
                    body: dict[str, Any] = {"network_id": entry["network_id"], "project_id": instance.project_id,
                                            **binding}
                    if instance.hostname:  # Nova's dns-integration: the network's DNS answers the server's name
                        body["dns_name"] = instance.hostname
                    if entry["network_id"] not in networks:
                        networks[entry["network_id"]] = await self.client.get_network(token, entry["network_id"])
                    if not networks[entry["network_id"]].get("port_security_enabled", True):
                        body["security_groups"] = []
                    elif group_ids is not None:
                        body["security_groups"] = group_ids
                    if entry.get("fixed_ip"):
                        body["fixed_ips"] = [{"ip_address": entry["fixed_ip"]}]
                    port = await self.client.create_port(token, body)
                    made.append(port["id"])
                ports.append(port)
            vifs = await self._vifs(token, ports, networks)
            for vif, entry in zip(vifs, requested, strict=True):
                if entry.get("tag"):  # Nova keeps it on the VirtualInterface; os-interface shows it (2.70)
                    vif["tag"] = entry["tag"]
            return vifs
        except BaseException:
            await self._release(token, made, taken)
            raise

    async def _release(self, token: str, made: list[str], taken: list[str]) -> None:
        for port_id in made:
            try:
                await self.client.delete_port(token, port_id)
            except errors.NotFound:
                pass
        for port_id in taken:
            try:
                await self.client.update_port(token, port_id, UNBOUND)
            except errors.NotFound:
                pass

    async def deallocate(self, instance_uuid: str, network_info: list[VIF] | None) -> None:
        """Nova's ``deallocate_for_instance``: delete the ports compute made, unbind the ones it was given."""
        token = await self._token()
        preserved = {v["id"] for v in network_info or () if v.get("preserve_on_delete")}
        ports = await self.client.list_ports(token, device_id=instance_uuid)
        await self._release(token, [p["id"] for p in ports if p["id"] not in preserved],
                            [p["id"] for p in ports if p["id"] in preserved])

    async def refresh(self, instance_uuid: str, network_info: list[VIF] | None) -> list[VIF]:
        """The instance's VIFs as the network service has them now, keeping compute's own flags."""
        token = await self._token()
        preserved = {v["id"] for v in network_info or () if v.get("preserve_on_delete")}
        order = [v["id"] for v in network_info or ()]
        ports = await self.client.list_ports(token, device_id=instance_uuid)
        for port in ports:
            port["_preserve"] = port["id"] in preserved
        ports.sort(key=lambda p: order.index(p["id"]) if p["id"] in order else len(order))
        vifs = await self._vifs(token, ports)
        tags = {v["id"]: v["tag"] for v in network_info or () if v.get("tag")}
        for vif in vifs:
            if vif["id"] in tags:
                vif["tag"] = tags[vif["id"]]
        return vifs

    async def _vifs(self, token: str, ports: list[dict[str, Any]],
                    networks: dict[str, dict[str, Any]] | None = None) -> list[VIF]:
        """The ports as VIFs: one request per network not in ``networks``, one for all subnets, one for all
        floating IPs (whatever the number of ports)."""
        networks = dict(networks or {})
        for network_id in dict.fromkeys(p["network_id"] for p in ports):
            if network_id not in networks:
                networks[network_id] = await self.client.get_network(token, network_id)
        subnet_ids = list(dict.fromkeys(ip["subnet_id"] for p in ports for ip in p.get("fixed_ips") or ()))
        subnets = {s["id"]: s for s in await self.client.list_subnets(token, id=subnet_ids)} if subnet_ids else {}
        floating: dict[str, list[dict[str, Any]]] = {}
        if ports:
            for fip in await self.client.list_floating_ips(token, port_id=[p["id"] for p in ports]):
                floating.setdefault(fip["port_id"], []).append(fip)
        return [vif_from_port(p, networks[p["network_id"]], subnets, floating.get(p["id"], [])) for p in ports]


    # -- os-interface: one port attached to or detached from a running instance ----------------------

    async def instance_ports(self, ctx: RequestContext, instance_uuid: str) -> list[dict[str, Any]]:
        """The instance's ports as the caller sees them (Nova's ``os-interface`` index lists with the user's token)."""
        return await self.client.list_ports(ctx.auth_token, device_id=instance_uuid)

    async def show_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        """One port with the caller's token; Nova's PortNotFound (404) when the caller cannot see it."""
        try:
            return await self.client.get_port(ctx.auth_token, port_id)
        except errors.NotFound:
            raise errors.NotFound(f"Port id {port_id} could not be found.") from None

    async def validate_attach(self, ctx: RequestContext, instance_uuid: str, project_id: str,
                              network_id: str | None, port_id: str | None, fixed_ip: str | None,
                              tag: str | None) -> NetworkRequest:
        """Nova's checks of ``allocate_for_instance`` for one interface, with the caller's token.

        They run in the compute API (Nova runs them on the compute host, with
        the same user context) so the caller gets Nova's 4xx before the
        agent makes anything: an unknown port or network is a 404 here (the
        build's 400), another project's port is PortNotUsable (400), a port
        with a device is PortInUse (409), no network given picks the
        project's only one (400 when there are none or several).
        """
        token = ctx.auth_token
        entry: NetworkRequest = {}
        if port_id:
            port = await self.show_port(ctx, port_id)
            if (port.get("project_id") or port.get("tenant_id")) != project_id:
                raise errors.BadRequest(f"Port {port_id} not usable for instance {instance_uuid}.")
            if port.get("device_id"):
                raise errors.Conflict(f"Port {port_id} is still in use.")
            entry = {"port_id": port_id, "network_id": port["network_id"]}
        else:
            if network_id:
                try:
                    network = await self.client.get_network(token, network_id)
                except errors.NotFound:
                    raise errors.NotFound(f"Network {network_id} could not be found.") from None
            else:
                candidates = await self._usable_networks(token, project_id)
                if not candidates:
                    raise errors.BadRequest("No specific network was requested and none are available for "
                                            f"project '{project_id}'.")
                if len(candidates) > 1:
                    raise errors.BadRequest(MULTIPLE_NETWORKS)
                network = candidates[0]
            _refuse_external(ctx, network)
            entry = {"network_id": network["id"]}
            if fixed_ip:
                entry["fixed_ip"] = fixed_ip
        if tag:
            entry["tag"] = tag
        return entry

    async def release_port(self, port_id: str, preserve: bool) -> None:
        """One port given back, with the service token: deleted if compute made it, unbound if the caller brought it.

        Nova's ``deallocate_port_for_instance``; a port already gone is not an error.
        """
        token = await self._token()
        await self._release(token, [] if preserve else [port_id], [port_id] if preserve else [])


def _refuse_external(ctx: RequestContext, network: dict[str, Any]) -> None:
    """Nova's ExternalNetworkAttachForbidden: only an admin plugs a server into an unshared external network."""
    if network.get("router:external") and not network.get("shared") and not ctx.is_admin:
        raise errors.Forbidden(f"It is not allowed to create an interface on external network {network['id']}")


UNBOUND = {"device_id": "", "device_owner": "", "binding:host_id": ""}


def _request(entry: dict[str, Any]) -> NetworkRequest:
    request: NetworkRequest = {}
    if entry.get("port"):
        request["port_id"] = entry["port"]
    if entry.get("uuid"):
        request["network_id"] = entry["uuid"]
    if entry.get("fixed_ip"):
        request["fixed_ip"] = entry["fixed_ip"]
    if entry.get("tag"):
        request["tag"] = entry["tag"]
    return request


def vif_from_port(port: dict[str, Any], network: dict[str, Any], subnets: dict[str, dict[str, Any]],
                  floating_ips: list[dict[str, Any]]) -> VIF:
    """One port as Nova's network model keeps it (``nova.network.model.VIF``, trimmed to what Kumo reads)."""
    by_fixed: dict[str, list[str]] = {}
    for fip in floating_ips:
        if fip.get("fixed_ip_address"):
            by_fixed.setdefault(fip["fixed_ip_address"], []).append(fip["floating_ip_address"])
    vif_subnets: dict[str, dict[str, Any]] = {}
    for ip in port.get("fixed_ips") or ():
        subnet = subnets.get(ip["subnet_id"], {})
        entry = vif_subnets.setdefault(ip["subnet_id"], {
            "id": ip["subnet_id"], "cidr": subnet.get("cidr"), "gateway": subnet.get("gateway_ip"),
            "version": subnet.get("ip_version", ipaddress.ip_address(ip["ip_address"]).version),
            "dns": list(subnet.get("dns_nameservers") or ()), "routes": list(subnet.get("host_routes") or ()),
            "dhcp": bool(subnet.get("enable_dhcp", True)), "ipv6_address_mode": subnet.get("ipv6_address_mode"),
            "ips": []})
        entry["ips"].append({"address": ip["ip_address"], "type": "fixed",
                             "floating_ips": by_fixed.get(ip["ip_address"], [])})
    details = port.get("binding:vif_details") or {}
    return {"id": port["id"], "address": port["mac_address"], "type": port.get("binding:vif_type") or "bridge",
            "devname": details.get("devname") or f"tap{port['id'][:11]}",
            "network": {"id": network["id"], "label": network.get("name") or network["id"],
                        "mtu": network.get("mtu"), "subnets": list(vif_subnets.values())},
            "preserve_on_delete": bool(port.get("_preserve")), "active": port.get("status") == "ACTIVE"}


def addresses(network_info: list[VIF] | None) -> dict[str, list[dict[str, Any]]]:
    """The server view's ``addresses``: per network label, fixed then floating addresses (Nova's order)."""
    result: dict[str, list[dict[str, Any]]] = {}
    for vif in network_info or ():
        entries = result.setdefault(vif["network"]["label"], [])
        for subnet in vif["network"]["subnets"]:
            for ip in subnet["ips"]:
                entries.append(_address(ip["address"], "fixed", vif["address"]))
        for subnet in vif["network"]["subnets"]:
            for ip in subnet["ips"]:
                entries += [_address(f, "floating", vif["address"]) for f in ip.get("floating_ips") or ()]
    return result


def _address(address: str, kind: str, mac: str) -> dict[str, Any]:
    return {"version": ipaddress.ip_address(address).version, "addr": address, "OS-EXT-IPS:type": kind,
            "OS-EXT-IPS-MAC:mac_addr": mac}


#: How the compute agent asks its host's network agent to make the taps of the ports it bound.
PlugVifs = Callable[[str, list[str]], Awaitable[dict[str, dict[str, Any]]]]
