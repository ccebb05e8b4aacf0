"""Key pairs (``os-keypairs``): import, generate (below 2.92), list, show, delete, per-user isolation, quota."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from computetest import ComputeEnv, fault
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID


def ed25519_public_key(comment: str = "test@kumo") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{text} {comment}"


def md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def certificate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kumo-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    digest = cert.fingerprint(hashes.SHA1()).hex()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), ":".join(
        digest[i:i + 2] for i in range(0, len(digest), 2))


async def test_import_list_show_delete(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    public = ed25519_public_key()
    r = await env.call(alice, "POST", "/os-keypairs", version="2.10", expect=201,
                       json={"keypair": {"name": "k1", "public_key": public}})
    assert r.json() == {"keypair": {"type": "ssh", "name": "k1", "public_key": public,
                                    "fingerprint": md5_fingerprint(public), "user_id": alice.user_id}}
    r = await env.call(alice, "GET", "/os-keypairs", version="2.2")
    assert r.json() == {"keypairs": [{"keypair": {"name": "k1", "public_key": public,
                                                  "fingerprint": md5_fingerprint(public), "type": "ssh"}}]}
    shown = (await env.call(alice, "GET", "/os-keypairs/k1", version="2.2")).json()["keypair"]
    assert {k: shown[k] for k in ("name", "public_key", "user_id", "type", "deleted", "deleted_at", "updated_at")} \
        == {"name": "k1", "public_key": public, "user_id": alice.user_id, "type": "ssh", "deleted": False,
            "deleted_at": None, "updated_at": None}
    assert isinstance(shown["id"], int)
    assert dt.datetime.strptime(shown["created_at"], "%Y-%m-%dT%H:%M:%S.%f")
    await env.call(alice, "DELETE", "/os-keypairs/k1", version="2.2", expect=204)
    r = await env.call(alice, "GET", "/os-keypairs/k1", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Keypair k1 not found for user {alice.user_id}"
    await env.call(alice, "DELETE", "/os-keypairs/k1", expect=404)


async def test_status_codes_and_fields_at_21(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    public = ed25519_public_key()
    r = await env.call(alice, "POST", "/os-keypairs", expect=200,
                       json={"keypair": {"name": "old", "public_key": public}})
    assert set(r.json()["keypair"]) == {"name", "public_key", "fingerprint", "user_id"}
    listed = (await env.call(alice, "GET", "/os-keypairs")).json()["keypairs"][0]["keypair"]
    assert set(listed) == {"name", "public_key", "fingerprint"}
    assert "type" not in (await env.call(alice, "GET", "/os-keypairs/old")).json()["keypair"]
    r = await env.call(alice, "POST", "/os-keypairs", expect=400,
                       json={"keypair": {"name": "typed", "public_key": public, "type": "ssh"}})
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('type' was unexpected)"
    await env.call(alice, "DELETE", "/os-keypairs/old", expect=202)


async def test_generated_keypair_below_292(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/os-keypairs", version="2.91", expect=201, json={"keypair": {"name": "gen"}})
    created = r.json()["keypair"]
    assert created["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert created["public_key"].startswith("ssh-rsa ") and created["public_key"].endswith(" Generated-by-Nova")
    assert created["fingerprint"] == md5_fingerprint(created["public_key"])
    private = serialization.load_pem_private_key(created["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    shown = (await env.call(alice, "GET", "/os-keypairs/gen", version="2.91")).json()["keypair"]
    assert "private_key" not in shown and shown["public_key"] == created["public_key"]


async def test_public_key_required_from_292(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/os-keypairs", version="2.92", expect=400, json={"keypair": {"name": "gen"}})
    assert fault(r, "badRequest", 400) == "'public_key' is a required property"
    r = await env.call(alice, "POST", "/os-keypairs", version="latest", expect=201,
                       json={"keypair": {"name": "me@host.example", "public_key": ed25519_public_key()}})
    assert r.json()["keypair"]["name"] == "me@host.example"
    r = await env.call(alice, "POST", "/os-keypairs", version="2.91", expect=400,
                       json={"keypair": {"name": "me@host", "public_key": ed25519_public_key()}})
    assert "does not match" in fault(r, "badRequest", 400)
    await env.call(alice, "GET", "/os-keypairs/me@host.example", version="2.92")


async def test_x509_keypairs(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    pem, fingerprint = certificate()
    r = await env.call(alice, "POST", "/os-keypairs", version="2.2", expect=201,
                       json={"keypair": {"name": "cert", "public_key": pem, "type": "x509"}})
    assert r.json()["keypair"]["fingerprint"] == fingerprint and r.json()["keypair"]["type"] == "x509"
    r = await env.call(alice, "POST", "/os-keypairs", version="2.2", expect=201,
                       json={"keypair": {"name": "gen-cert", "type": "x509"}})
    created = r.json()["keypair"]
    assert created["public_key"].startswith("-----BEGIN CERTIFICATE-----") and base64.b64decode(created["private_key"])
    r = await env.call(alice, "POST", "/os-keypairs", version="2.2", expect=400,
                       json={"keypair": {"name": "bad-cert", "public_key": "not a cert", "type": "x509"}})
    assert fault(r, "badRequest", 400).startswith("Keypair data is invalid: failed to generate X509 fingerprint.")


async def test_users_only_see_their_own(env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "alpha")  # same project: key pairs are per user, not per project
    await env.call(alice, "POST", "/os-keypairs", expect=200,
                   json={"keypair": {"name": "mine", "public_key": ed25519_public_key()}})
    assert (await env.call(bob, "GET", "/os-keypairs")).json() == {"keypairs": []}
    await env.call(bob, "GET", "/os-keypairs/mine", expect=404)
    await env.call(bob, "DELETE", "/os-keypairs/mine", expect=404)
    # bob may use the same name for his own key
    await env.call(bob, "POST", "/os-keypairs", expect=200,
                   json={"keypair": {"name": "mine", "public_key": ed25519_public_key()}})
    # naming another user is for admins (2.10), and ignored before 2.10
    r = await env.call(bob, "GET", "/os-keypairs", params={"user_id": alice.user_id}, version="2.10", expect=403)
    assert "os_compute_api:os-keypairs:index" in fault(r, "forbidden", 403)
    await env.call(bob, "POST", "/os-keypairs", version="2.10", expect=403,
                   json={"keypair": {"name": "x", "public_key": ed25519_public_key(), "user_id": alice.user_id}})
    r = await env.call(bob, "GET", "/os-keypairs", params={"user_id": alice.user_id}, version="2.9")
    assert [k["keypair"]["name"] for k in r.json()["keypairs"]] == ["mine"]


async def test_admin_acts_for_other_users_from_210(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    r = await env.call(admin, "POST", "/os-keypairs", version="2.10", expect=201,
                       json={"keypair": {"name": "given", "public_key": ed25519_public_key(),
                                         "user_id": alice.user_id}})
    assert r.json()["keypair"]["user_id"] == alice.user_id
    listed = (await env.call(alice, "GET", "/os-keypairs")).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["given"]
    r = await env.call(admin, "GET", "/os-keypairs", params={"user_id": alice.user_id}, version="2.10")
    assert len(r.json()["keypairs"]) == 1
    await env.call(admin, "GET", "/os-keypairs/given", params={"user_id": alice.user_id}, version="2.10")
    await env.call(admin, "DELETE", "/os-keypairs/given", params={"user_id": alice.user_id}, version="2.10",
                   expect=204)
    r = await env.call(admin, "POST", "/os-keypairs", version="2.9", expect=400,
                       json={"keypair": {"name": "x", "public_key": ed25519_public_key(), "user_id": alice.user_id}})
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('user_id' was unexpected)"


async def test_paging_from_235(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    for name in ("c", "a", "d", "b"):
        await env.call(alice, "POST", "/os-keypairs", expect=200,
                       json={"keypair": {"name": name, "public_key": ed25519_public_key()}})
    r = await env.call(alice, "GET", "/os-keypairs", params={"limit": "2"}, version="2.35")
    body = r.json()
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["a", "b"]
    assert body["keypairs_links"] == [{"rel": "next",
                                       "href": "http://kumo.test/compute/v2.1/os-keypairs?limit=2&marker=b"}]
    r = await env.call(alice, "GET", "/os-keypairs", params={"limit": "2", "marker": "b"}, version="2.35")
    assert [k["keypair"]["name"] for k in r.json()["keypairs"]] == ["c", "d"]
    r = await env.call(alice, "GET", "/os-keypairs", params={"marker": "zz"}, version="2.35", expect=400)
    assert fault(r, "badRequest", 400) == "Marker zz could not be found."
    # before 2.35 there is no paging: limit is ignored
    r = await env.call(alice, "GET", "/os-keypairs", params={"limit": "2"}, version="2.34")
    assert len(r.json()["keypairs"]) == 4 and "keypairs_links" not in r.json()
    await env.call(alice, "GET", "/os-keypairs", params={"bogus": "1"}, version="2.75", expect=400)


async def test_duplicates_and_invalid_keys(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    public = ed25519_public_key()
    await env.call(alice, "POST", "/os-keypairs", expect=200, json={"keypair": {"name": "k", "public_key": public}})
    r = await env.call(alice, "POST", "/os-keypairs", expect=409, json={"keypair": {"name": "k", "public_key": public}})
    assert fault(r, "conflictingRequest", 409) == "Key pair 'k' already exists."
    for bad in ("ssh-rsa not-base64!", "garbage", "", "ssh-ed25519 AAAA"):
        r = await env.call(alice, "POST", "/os-keypairs", expect=400,
                           json={"keypair": {"name": "b", "public_key": bad}})
        assert fault(r, "badRequest", 400) == "Keypair data is invalid: failed to generate fingerprint"


@pytest.mark.parametrize(("name", "message"), [
    (" lead", ("An invalid 'name' value was provided. The name must be: printable characters. "
              "Can not start or end with whitespace.")),
    ("trail ", ("An invalid 'name' value was provided. The name must be: printable characters. "
               "Can not start or end with whitespace.")),
    ("", "Invalid input for field/attribute name. Value: . '' is too short"),
    ("x" * 256, None),
    ("bad/char", ("Invalid input for field/attribute name. Value: bad/char. 'bad/char' does not match "
                 "'^[_\\- a-zA-Z0-9]+$'")),
    (7, "Invalid input for field/attribute name. Value: 7. 7 is not of type 'string'"),
])
async def test_keypair_names(env: ComputeEnv, name: object, message: str | None) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/os-keypairs", expect=400,
                       json={"keypair": {"name": name, "public_key": ed25519_public_key()}})
    text = fault(r, "badRequest", 400)
    if message is not None:
        assert text == message


async def test_quota(env: ComputeEnv) -> None:
    from kumo.compute.models import Quota

    alice = await env.user("alice", "quota-project")
    async with env.cloud.node.db.session() as s:
        s.add(Quota(project_id=alice.project_id, resource="key_pairs", hard_limit=2))
    for name in ("q1", "q2"):
        await env.call(alice, "POST", "/os-keypairs", expect=200,
                       json={"keypair": {"name": name, "public_key": ed25519_public_key()}})
    r = await env.call(alice, "POST", "/os-keypairs", expect=403,
                       json={"keypair": {"name": "q3", "public_key": ed25519_public_key()}})
    assert fault(r, "forbidden", 403) == "Quota exceeded, too many key pairs."
    await env.call(alice, "POST", "/os-keypairs", version="2.91", expect=403, json={"keypair": {"name": "q3"}})
    await env.call(alice, "DELETE", "/os-keypairs/q1", expect=202)
    await env.call(alice, "POST", "/os-keypairs", expect=200,
                   json={"keypair": {"name": "q3", "public_key": ed25519_public_key()}})
