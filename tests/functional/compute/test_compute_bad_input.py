"""Bad input to the compute API: always a 4xx with Nova's body, nothing half-done, the server keeps serving."""

from __future__ import annotations

import pytest
from computetest import ComputeEnv, fault


@pytest.mark.parametrize(("body", "message"), [
    ({"flavor": {"ram": 1, "vcpus": 1, "disk": 1}}, "'name' is a required property"),
    ({"flavor": {"name": "x", "vcpus": 1, "disk": 1}}, "'ram' is a required property"),
    ({}, "'flavor' is a required property"),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "color": "red"}},
     "Additional properties are not allowed ('color' was unexpected)"),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}, "extra": 1},
     "Additional properties are not allowed ('extra' was unexpected)"),
    ({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 1}},
     "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1"),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": -1}},
     "Invalid input for field/attribute disk. Value: -1. -1 is less than the minimum of 0"),
    ({"flavor": {"name": "x", "ram": 1.5, "vcpus": 1, "disk": 1}},
     "Invalid input for field/attribute ram. Value: 1.5. 1.5 is not of type 'integer', 'string'"),
    ({"flavor": {"name": "x", "ram": "lots", "vcpus": 1, "disk": 1}},
     "Invalid input for field/attribute ram. Value: lots. 'lots' does not match '^[0-9]+$'"),
    ({"flavor": {"name": "x", "ram": True, "vcpus": 1, "disk": 1}},
     "Invalid input for field/attribute ram. Value: True. True is not of type 'integer', 'string'"),
    ({"flavor": {"name": "x", "ram": 2 ** 31, "vcpus": 1, "disk": 1}},
     ("Invalid input for field/attribute ram. Value: 2147483648. 2147483648 is greater than the maximum of "
     "2147483647")),
    ({"flavor": {"name": 5, "ram": 1, "vcpus": 1, "disk": 1}},
     "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"),
    ({"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 1}},
     ("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end "
     "with whitespace.")),
    ({"flavor": {"name": "a\u0000b", "ram": 1, "vcpus": 1, "disk": 1}},
     ("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end "
     "with whitespace.")),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "id": " lead"}}, None),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "id": "a/b"}}, None),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "id": True}}, None),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}, None),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": "maybe"}}, None),
    ({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "ephemeral": 1}},
     "Additional properties are not allowed ('ephemeral' was unexpected)"),
    ({"flavor": "x"}, "Invalid input for field/attribute flavor. Value: x. \"x\" is not of type 'object'"),
    ([1, 2], "[1,2] is not of type 'object'"),
    ("flavor", "\"flavor\" is not of type 'object'"),
])
async def test_flavor_create_validation(env: ComputeEnv, body: object, message: str | None) -> None:
    r = await env.call(await env.admin(), "POST", "/flavors", json=body, expect=400)
    text = fault(r, "badRequest", 400)
    if message is not None:
        assert text == message
    flavors = (await env.call(await env.admin(), "GET", "/flavors", params={"is_public": "none"})).json()["flavors"]
    assert len(flavors) == 6  # nothing was created


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b"\xff\xfe", b"[", b'{"flavor": }'])
async def test_malformed_bodies(env: ComputeEnv, content: bytes) -> None:
    admin = await env.admin()
    for path in ("/flavors", "/os-keypairs", "/flavors/1/os-extra_specs", "/flavors/1/action"):
        r = await env.call(admin, "POST", path, content=content, headers={"Content-Type": "application/json"},
                           expect=400)
        fault(r, "badRequest", 400)
    await env.call(admin, "GET", "/flavors")


async def test_oversize_body_is_413(env: ComputeEnv) -> None:
    admin = await env.admin()
    big = b'{"keypair": {"name": "k", "public_key": "' + b"A" * 200_000 + b'"}}'
    r = await env.call(admin, "POST", "/os-keypairs", content=big, headers={"Content-Type": "application/json"},
                       expect=413)
    fault(r, "overLimit", 413)


@pytest.mark.parametrize(("body", "message"), [
    ({"keypair": {"public_key": "x"}}, "'name' is a required property"),
    ({"keypair": {"name": "k", "public_key": None}},
     "Invalid input for field/attribute public_key. Value: None. None is not of type 'string'"),
    ({"keypair": {"name": "k", "public_key": 5}}, None),
    ({"keypair": {"name": "k", "type": "gpg", "public_key": "x"}}, None),
    ({"keypair": {"name": "k", "color": "x"}}, "Additional properties are not allowed ('color' was unexpected)"),
    ({"keypairs": {"name": "k"}}, None),
])
async def test_keypair_create_validation(env: ComputeEnv, body: object, message: str | None) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/os-keypairs", json=body, version="2.10", expect=400)
    text = fault(r, "badRequest", 400)
    if message is not None:
        assert text == message
    assert (await env.call(alice, "GET", "/os-keypairs")).json() == {"keypairs": []}
