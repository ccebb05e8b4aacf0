"""``/v2/images/{id}/members``: sharing an image with other projects."""

from __future__ import annotations

from imagetest import IMAGES, PATCH_TYPE, ImageEnv


async def test_sharing_lifecycle(env: ImageEnv) -> None:
    alpha, beta, gamma = await env.project("alpha"), await env.project("beta"), await env.project("gamma")
    image = await env.active(alpha, b"shared bytes", name="to-share")
    assert image["visibility"] == "shared"
    await env.show(beta, image["id"], expect=404)  # not a member yet

    r = await env.add_member(alpha, image["id"], beta.id)
    member = r.json()
    assert member["image_id"] == image["id"] and member["member_id"] == beta.id
    assert member["status"] == "pending"
    assert member["schema"] == "/v2/schemas/member"
    assert member["created_at"] and member["updated_at"]
    await env.add_member(alpha, image["id"], gamma.id)

    # pending: beta sees the image by id, but it is not in its default list
    assert (await env.show(beta, image["id"]))["name"] == "to-share"
    assert image["id"] not in await env.list_ids(beta)
    assert await env.list_ids(beta, {"member_status": "pending"}) == [image["id"]]
    assert await env.list_ids(beta, {"member_status": "all"}) == [image["id"]]
    assert await env.list_ids(beta, {"member_status": "accepted"}) == []
    assert await env.list_ids(beta, {"visibility": "shared", "member_status": "pending"}) == [image["id"]]

    # only beta decides for beta
    r = await env.set_member(alpha, image["id"], beta.id, "accepted", expect=403)
    assert r.json()["code"] == "403 Forbidden"
    await env.set_member(gamma, image["id"], beta.id, "accepted", expect=403)
    r = await env.set_member(beta, image["id"], beta.id, "accepted")
    assert r.json()["status"] == "accepted" and r.json()["member_id"] == beta.id
    assert image["id"] in await env.list_ids(beta)
    assert image["id"] in await env.list_ids(beta, {"visibility": "shared"})
    assert (await env.download(beta, image["id"])).content == b"shared bytes"

    # each member sees only its own membership; the owner sees all
    r = await env.client.get(f"{IMAGES}/{image['id']}/members", headers=beta.headers)
    assert r.status_code == 200
    assert [m["member_id"] for m in r.json()["members"]] == [beta.id]
    assert r.json()["schema"] == "/v2/schemas/members"
    r = await env.client.get(f"{IMAGES}/{image['id']}/members", headers=alpha.headers)
    assert sorted(m["member_id"] for m in r.json()["members"]) == sorted([beta.id, gamma.id])
    r = await env.client.get(f"{IMAGES}/{image['id']}/members/{gamma.id}", headers=beta.headers)
    assert r.status_code == 404
    r = await env.client.get(f"{IMAGES}/{image['id']}/members/{beta.id}", headers=beta.headers)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = await env.client.get(f"{IMAGES}/{image['id']}/members/{gamma.id}", headers=alpha.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"

    # rejecting takes it out of the list again, but it stays reachable by id
    await env.set_member(beta, image["id"], beta.id, "rejected")
    assert image["id"] not in await env.list_ids(beta)
    assert await env.list_ids(beta, {"member_status": "rejected"}) == [image["id"]]
    await env.show(beta, image["id"])


async def test_member_cannot_change_the_image(env: ImageEnv) -> None:
    alpha, beta, delta = await env.project("alpha"), await env.project("beta"), await env.project("delta")
    image = await env.active(alpha, b"mine", name="owned")
    await env.add_member(alpha, image["id"], beta.id)
    await env.set_member(beta, image["id"], beta.id, "accepted")
    base = f"{IMAGES}/{image['id']}"
    r = await env.client.patch(base, headers={**beta.headers, "Content-Type": PATCH_TYPE},
                               json=[{"op": "replace", "path": "/name", "value": "stolen"}])
    assert r.status_code == 403
    r = await env.client.delete(base, headers=beta.headers)
    assert r.status_code == 403
    r = await env.client.put(f"{base}/tags/mine", headers=beta.headers)
    assert r.status_code == 403
    r = await env.client.put(f"{base}/file", headers={**beta.headers, "Content-Type": "application/octet-stream"},
                             content=b"x")
    assert r.status_code == 403
    await env.add_member(beta, image["id"], delta.id, expect=403)  # only the owner shares
    r = await env.client.delete(f"{base}/members/{beta.id}", headers=beta.headers)
    assert r.status_code == 403
    shown = await env.show(alpha, image["id"])
    assert shown["name"] == "owned" and shown["tags"] == [] and shown["status"] == "active"


async def test_outsider_sees_nothing(env: ImageEnv) -> None:
    alpha, beta, gamma = await env.project("alpha"), await env.project("beta"), await env.project("gamma")
    image = await env.active(alpha, b"data")
    await env.add_member(alpha, image["id"], beta.id)
    await env.set_member(beta, image["id"], beta.id, "accepted")
    base = f"{IMAGES}/{image['id']}"
    await env.show(gamma, image["id"], expect=404)
    assert image["id"] not in await env.list_ids(gamma, {"visibility": "all", "member_status": "all"})
    await env.download(gamma, image["id"], expect=404)
    for method, url in (("GET", f"{base}/members"), ("GET", f"{base}/members/{beta.id}"),
                        ("DELETE", base), ("DELETE", f"{base}/members/{beta.id}")):
        r = await env.client.request(method, url, headers=gamma.headers)
        assert r.status_code == 404, (method, url, r.status_code)
    await env.set_member(gamma, image["id"], gamma.id, "accepted", expect=404)
    await env.add_member(gamma, image["id"], gamma.id, expect=404)  # cannot invite itself either


async def test_removing_a_member_revokes_access(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.active(alpha, b"data")
    await env.add_member(alpha, image["id"], beta.id)
    await env.set_member(beta, image["id"], beta.id, "accepted")
    r = await env.client.delete(f"{IMAGES}/{image['id']}/members/{beta.id}", headers=alpha.headers)
    assert r.status_code == 204 and r.content == b""
    await env.show(beta, image["id"], expect=404)
    assert image["id"] not in await env.list_ids(beta)
    await env.download(beta, image["id"], expect=404)
    r = await env.client.delete(f"{IMAGES}/{image['id']}/members/{beta.id}", headers=alpha.headers)
    assert r.status_code == 404
    r = await env.client.get(f"{IMAGES}/{image['id']}/members", headers=alpha.headers)
    assert r.json()["members"] == []
    # a new invitation starts pending again
    r = await env.add_member(alpha, image["id"], beta.id)
    assert r.json()["status"] == "pending"


async def test_only_shared_images_have_members(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    private = await env.create(alpha, name="private", visibility="private")
    r = await env.add_member(alpha, private["id"], beta.id, expect=403)
    assert "shared" in r.json()["message"]
    r = await env.client.get(f"{IMAGES}/{private['id']}/members", headers=alpha.headers)
    assert r.status_code == 403
    public = await env.create(admin, name="public", visibility="public")
    await env.add_member(admin, public["id"], beta.id, expect=403)
    # making a shared image private hides it from its members
    shared = await env.create(alpha, name="shared")
    await env.add_member(alpha, shared["id"], beta.id)
    await env.set_member(beta, shared["id"], beta.id, "accepted")
    await env.patch(alpha, shared["id"], [{"op": "replace", "path": "/visibility", "value": "private"}])
    await env.show(beta, shared["id"], expect=404)
    assert shared["id"] not in await env.list_ids(beta)


async def test_member_input_errors(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="img")
    await env.add_member(alpha, image["id"], beta.id)
    r = await env.add_member(alpha, image["id"], beta.id, expect=409)
    assert r.json()["code"] == "409 Conflict"
    url = f"{IMAGES}/{image['id']}/members"
    for body in ({}, {"member": ""}, {"member": 5}, {"members": beta.id}, [beta.id]):
        r = await env.client.post(url, headers=alpha.headers, json=body)
        assert r.status_code == 400, body
    for body in ({}, {"status": "maybe"}, {"status": 1}):
        r = await env.client.put(f"{url}/{beta.id}", headers=beta.headers, json=body)
        assert r.status_code == 400, body
    r = await env.client.put(f"{url}/{alpha.id}", headers=alpha.headers, json={"status": "accepted"})
    assert r.status_code == 404  # alpha is the owner, not a member
    r = await env.client.post(f"{IMAGES}/5a0b0c6e-7c3b-4b1c-9f1e-000000000000/members", headers=alpha.headers,
                              json={"member": beta.id})
    assert r.status_code == 404


async def test_deleting_the_image_drops_its_members(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="short-lived")
    await env.add_member(alpha, image["id"], beta.id)
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 204
    r = await env.client.get(f"{IMAGES}/{image['id']}/members/{beta.id}", headers=beta.headers)
    assert r.status_code == 404
    assert await env.list_ids(beta, {"member_status": "all"}) == []


async def test_member_quota(cloud_with) -> None:  # type: ignore[no-untyped-def]
    async with cloud_with(image__image_member_quota=1) as env:
        alpha, beta, gamma = await env.project("alpha"), await env.project("beta"), await env.project("gamma")
        image = await env.create(alpha, name="q")
        await env.add_member(alpha, image["id"], beta.id)
        r = await env.add_member(alpha, image["id"], gamma.id, expect=413)
        assert "members" in r.json()["message"]
