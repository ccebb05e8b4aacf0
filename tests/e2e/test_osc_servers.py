"""The real ``openstack`` CLI against a live ``kumo up`` with three fake compute hosts: servers end to end.

Every command is the unchanged python-openstackclient: it finds the compute
endpoint in the catalog, negotiates a microversion and waits with ``--wait``
by polling ``GET /servers/{id}`` as it does against Nova.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import KumoProcess, OscResult, unique, write_clouds_yaml

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def image(kumo: KumoProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * 65536)
    name = unique("e2e-srv-img")
    # Room for every test of this module at once (the default is Nova's 10 instances per project).
    kumo.osc("quota", "set", "--instances", "100", "--cores", "200", "--ram", "1000000", "admin", json=False)
    kumo.osc("image", "create", "--file", str(data), "--disk-format", "raw", "--container-format", "bare",
             "--public", name)
    return name


def assert_failed(result: OscResult, *needles: str) -> None:
    assert result.returncode != 0, str(result)
    for needle in needles:
        assert needle in result.stderr, str(result)


def status(kumo: KumoProcess, name: str) -> str:
    return str(kumo.osc("server", "show", name)["status"])


def test_server_lifecycle(kumo: KumoProcess, image: str) -> None:
    name = unique("e2e-srv")
    created = kumo.osc("server", "create", "--image", image, "--flavor", "m1.tiny", "--nic", "none",
                       "--property", "role=web", "--wait", name, timeout=120)
    assert created["status"] == "ACTIVE" and created["OS-EXT-STS:power_state"] in ("Running", 1)
    assert created["OS-EXT-SRV-ATTR:host"].startswith("e2e-host-fake-")
    listed = kumo.osc("server", "list", "--long", "--name", name)
    assert [(r["Name"], r["Status"], r["Flavor Name"] if "Flavor Name" in r else r["Flavor"]) for r in listed] \
        == [(name, "ACTIVE", "m1.tiny")]
    for action, expected in (("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"), ("unpause", "ACTIVE"),
                             ("suspend", "SUSPENDED"), ("resume", "ACTIVE")):
        # One client process: the action, then a few looks (the agent works asynchronously, in milliseconds).
        _, *looks = kumo.osc_batch(["server", action, name], *[["server", "show", name]] * 3)
        seen = [look["status"] for look in looks]
        for _ in range(20):
            if seen[-1] == expected:
                break
            seen.append(status(kumo, name))
        assert seen[-1] == expected, f"{action}: {seen}"
    _, _, locked, _, events = kumo.osc_batch(["server", "reboot", "--hard", "--wait", name], ["server", "lock", name],
                                             ["server", "show", name], ["server", "unlock", name],
                                             ["server", "event", "list", name])
    assert locked["status"] == "ACTIVE" and locked["locked"] is True
    assert {"create", "stop", "start", "pause", "unpause", "suspend", "resume", "reboot", "lock", "unlock"} <= \
        {e["Action"] for e in events}
    kumo.osc("server", "delete", "--wait", name, json=False, timeout=120)
    assert_failed(kumo.osc("server", "show", name, check=False), "No Server found")


def test_resize_confirm_and_snapshot(kumo: KumoProcess, image: str) -> None:
    name, snap = unique("e2e-resize"), unique("e2e-snap")
    kumo.osc("server", "create", "--image", image, "--flavor", "m1.tiny", "--nic", "none", "--wait", name,
             timeout=120)
    kumo.osc("server", "resize", "--flavor", "m1.small", "--wait", name, json=False, timeout=120)
    assert status(kumo, name) == "VERIFY_RESIZE"
    kumo.osc("server", "resize", "confirm", name, json=False)
    for _ in range(100):
        if status(kumo, name) == "ACTIVE":
            break
    shown = kumo.osc("server", "show", name)
    assert shown["status"] == "ACTIVE" and "m1.small" in str(shown["flavor"])
    kumo.osc("server", "image", "create", "--name", snap, "--wait", name, timeout=120)
    snapshot = kumo.osc("image", "show", snap)
    assert snapshot["status"] == "active" and snapshot["properties"]["image_type"] == "snapshot"
    kumo.osc_batch(["server", "delete", "--wait", name], ["image", "delete", snap])


def test_many_at_once_and_anti_affinity(kumo: KumoProcess, image: str) -> None:
    name, group = unique("e2e-many"), unique("e2e-group")
    kumo.osc("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none", "--min", "10",
             "--max", "10", "--wait", name, timeout=180, json=False)
    many = kumo.osc("server", "list", "--name", f"^{name}-")
    assert len(many) == 10 and {r["Status"] for r in many} == {"ACTIVE"}
    created = kumo.osc("server", "group", "create", "--policy", "anti-affinity", group)
    assert created["policy"] == "anti-affinity"
    hosts = []
    for i in range(3):
        server = kumo.osc("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                          "--hint", f"group={created['id']}", "--wait", f"{group}-{i}", timeout=120)
        hosts.append(server["OS-EXT-SRV-ATTR:host"])
    assert len(set(hosts)) == 3  # three fake hosts, one member each
    fourth = kumo.osc("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                      "--hint", f"group={created['id']}", "--wait", f"{group}-3", check=False, timeout=120)
    assert fourth.returncode != 0  # no fourth host: ERROR with the filter that said no
    fault = kumo.osc("server", "show", f"{group}-3")["fault"]
    assert "ServerGroupAntiAffinityFilter removed" in str(fault)
    ids = [r["ID"] for r in many] + [kumo.osc("server", "show", f"{group}-{i}")["id"] for i in range(4)]
    kumo.osc("server", "delete", "--wait", *ids, json=False, timeout=180)
    kumo.osc("server", "group", "delete", group, json=False)


def test_quotas_services_hypervisors(kumo: KumoProcess, image: str) -> None:
    project = unique("e2e-quota")
    kumo.osc("project", "create", project)
    kumo.osc("quota", "set", "--instances", "1", "--cores", "7", project, json=False)
    shown = kumo.osc("quota", "show", project)
    if isinstance(shown, list):  # newer clients print one row per resource
        shown = {row["Resource"]: row["Limit"] for row in shown}
    assert (shown["instances"], shown["cores"]) == (1, 7)
    services = kumo.osc("compute", "service", "list")
    assert {"nova-compute", "nova-conductor", "nova-scheduler"} <= {s["Binary"] for s in services}
    computes = [s for s in services if s["Binary"] == "nova-compute"]
    assert len(computes) == 3 and {s["State"] for s in computes} == {"up"}
    host = computes[0]["Host"]
    kumo.osc("compute", "service", "set", "--disable", "--disable-reason", "maintenance", host, "nova-compute",
             json=False)
    disabled = [s for s in kumo.osc("compute", "service", "list") if s["Host"] == host]
    assert disabled[0]["Status"] == "disabled"
    kumo.osc("compute", "service", "set", "--enable", host, "nova-compute", json=False)
    hypervisors = kumo.osc("hypervisor", "list")
    assert len(hypervisors) == 3 and {h["Hypervisor Type"] for h in hypervisors} == {"fake"}
    kumo.osc("project", "delete", project, json=False)


def test_bad_input(kumo: KumoProcess, image: str, tmp_path: Path) -> None:
    name = unique("e2e-bad")
    assert_failed(kumo.osc("server", "create", "--image", image, "--flavor", "no-such-flavor", "--nic", "none",
                           name, check=False), "No Flavor found")
    assert_failed(kumo.osc("server", "create", "--image", image, "--flavor", "m1.tiny", "--nic", "none",
                           "--min", "3", "--max", "2", name, check=False))
    kumo.osc("server", "create", "--image", image, "--flavor", "m1.tiny", "--nic", "none", "--wait", name,
             timeout=120)
    assert_failed(kumo.osc("server", "start", name, check=False), "409")  # already running
    project, user = unique("e2e-other"), unique("e2e-otheruser")
    kumo.osc_batch(["project", "create", project],
                   ["user", "create", "--password", "other-pw-1", "--project", project, user],
                   ["role", "add", "--user", user, "--project", project, "member"])
    other = write_clouds_yaml(tmp_path / "other.yaml", {"other": {
        "auth": {"auth_url": kumo.auth_url, "username": user, "password": "other-pw-1",
                 "user_domain_name": "Default", "project_name": project, "project_domain_name": "Default"},
        "region_name": "RegionOne", "identity_api_version": 3}})
    server_id = kumo.osc("server", "show", name)["id"]
    assert_failed(kumo.osc("server", "show", server_id, check=False, cloud="other", config=other), "No Server found")
    assert kumo.osc("server", "list", cloud="other", config=other) == []
    assert_failed(kumo.osc("server", "delete", server_id, check=False, cloud="other", config=other))
    kumo.osc("quota", "set", "--instances", "0", project, json=False)
    assert_failed(kumo.osc("server", "create", "--image", image, "--flavor", "m1.tiny", "--nic", "none",
                           unique("e2e-overquota"), check=False, cloud="other", config=other), "Quota exceeded")
    kumo.osc("server", "delete", "--wait", name, json=False, timeout=120)
