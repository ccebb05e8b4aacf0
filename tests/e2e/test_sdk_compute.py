"""openstacksdk against a live ``kumo up``: the compute proxy's server calls, unchanged."""

from __future__ import annotations

import pytest
from e2e_support import unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sdk_image(conn):  # type: ignore[no-untyped-def]
    image = conn.image.create_image(name=unique("e2e-sdk-img"), disk_format="raw", container_format="bare",
                                    data=b"\0" * 4096, visibility="public")
    yield image
    conn.image.delete_image(image, ignore_missing=True)


def test_sdk_server_round_trip(conn, sdk_image) -> None:  # type: ignore[no-untyped-def]
    flavor = conn.compute.find_flavor("m1.tiny")
    keypair = conn.compute.create_keypair(name=unique("e2e-sdk-key"))
    server = conn.compute.create_server(name=unique("e2e-sdk-srv"), image_id=sdk_image.id, flavor_id=flavor.id,
                                        networks="none", key_name=keypair.name, metadata={"k": "v"})
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    assert server.status == "ACTIVE" and server.key_name == keypair.name and server.metadata == {"k": "v"}
    assert server.id in {s.id for s in conn.compute.servers(details=True)}
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=60)
    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    conn.compute.reboot_server(server, "HARD")
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    actions = list(conn.compute.server_actions(server))
    assert {"create", "stop", "start", "reboot"} <= {a.action for a in actions}
    output = conn.compute.get_server_console_output(server)
    assert "spawned" in output["output"]
    limits = conn.compute.get_limits()
    assert limits.absolute.instances_used >= 1
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    conn.compute.delete_keypair(keypair)


def test_sdk_services_hypervisors_and_groups(conn) -> None:  # type: ignore[no-untyped-def]
    services = list(conn.compute.services())
    assert sum(1 for s in services if s.binary == "nova-compute" and s.state == "up") == 3
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert len(hypervisors) == 3
    group = conn.compute.create_server_group(name=unique("e2e-sdk-group"), policy="soft-anti-affinity")
    assert conn.compute.get_server_group(group.id).policy == "soft-anti-affinity"
    conn.compute.delete_server_group(group)
    assert "nova" in {z.name for z in conn.compute.availability_zones()}
