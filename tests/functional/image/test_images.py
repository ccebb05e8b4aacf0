"""``/v2/images``: create, show, list (filters, sort, paging), JSON-patch, delete, actions, tags, visibility."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

from imagetest import IMAGES, PATCH_TYPE, ImageEnv

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- create / show ------------------------------------------------------------------------------------

async def test_create_defaults(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    r = await env.client.post(IMAGES, headers=alpha.headers, json={"name": "plain"})
    assert r.status_code == 201, r.text
    image = r.json()
    assert r.headers["Location"].endswith(f"/v2/images/{image['id']}")
    assert image["name"] == "plain"
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == alpha.id
    assert image["size"] is None and image["virtual_size"] is None
    assert image["checksum"] is None and image["os_hash_algo"] is None and image["os_hash_value"] is None
    assert image["protected"] is False and image["os_hidden"] is False
    assert image["min_disk"] == 0 and image["min_ram"] == 0
    assert image["disk_format"] is None and image["container_format"] is None
    assert image["tags"] == []
    assert ISO.match(image["created_at"]) and ISO.match(image["updated_at"])
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert await env.show(alpha, image["id"]) == image


async def test_create_with_fields_and_custom_properties(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="cirros", disk_format="qcow2", container_format="bare", min_disk=2,
                             min_ram=512, protected=True, tags=["x86", "linux", "x86"], visibility="private",
                             os_distro="cirros", hw_disk_bus="virtio")
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert (image["min_disk"], image["min_ram"], image["protected"]) == (2, 512, True)
    assert image["visibility"] == "private"
    assert sorted(image["tags"]) == ["linux", "x86"]  # duplicates collapse
    # custom properties are plain top-level attributes, never nested
    assert image["os_distro"] == "cirros" and image["hw_disk_bus"] == "virtio"
    assert "properties" not in image
    shown = await env.show(alpha, image["id"])
    assert shown["os_distro"] == "cirros" and shown["hw_disk_bus"] == "virtio"


async def test_create_with_id_and_duplicate_id(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image_id = "5a0b0c6e-7c3b-4b1c-9f1e-111111111111"
    image = await env.create(alpha, id=image_id, name="fixed")
    assert image["id"] == image_id
    await env.create(alpha, expect=409, id=image_id, name="again")


async def test_create_read_only_or_reserved_attribute_is_forbidden(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for field in ("status", "size", "virtual_size", "checksum", "created_at", "updated_at", "os_hash_algo",
                  "os_hash_value", "self", "file", "schema", "direct_url"):
        r = await env.client.post(IMAGES, headers=alpha.headers, json={"name": "x", field: "whatever"})
        assert r.status_code == 403, (field, r.text)
        assert r.json()["message"] == f"Attribute '{field}' is read-only."
    for field in ("location", "deleted", "deleted_at"):
        r = await env.client.post(IMAGES, headers=alpha.headers, json={"name": "x", field: "whatever"})
        assert r.status_code == 403, (field, r.text)
        assert r.json()["message"] == f"Attribute '{field}' is reserved."
    assert await env.list_ids(alpha) == []


async def test_create_for_another_owner_needs_admin(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    await env.create(alpha, expect=403, name="not mine", owner=beta.id)
    image = await env.create(admin, name="for beta", owner=beta.id)
    assert image["owner"] == beta.id
    assert (await env.show(beta, image["id"]))["owner"] == beta.id


async def test_show_unknown_image(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    r = await env.client.get(f"{IMAGES}/5a0b0c6e-7c3b-4b1c-9f1e-000000000000", headers=alpha.headers)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found"
    assert "5a0b0c6e-7c3b-4b1c-9f1e-000000000000" in body["message"]


async def test_image_api_needs_a_token(env: ImageEnv) -> None:
    r = await env.client.get(IMAGES)
    assert r.status_code == 401
    r = await env.client.get("/image/v2/")
    assert r.status_code == 300
    assert r.json()["versions"][0]["status"] == "CURRENT"


# -- list ---------------------------------------------------------------------------------------------

async def test_list_filters(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    small = await env.active(alpha, b"s" * 100, name="small", tags=["a", "b"])
    big = await env.active(alpha, b"B" * 5000, name="big", tags=["a"], disk_format="ami", container_format="ami")
    queued = await env.create(alpha, name="empty", tags=["b"], visibility="private")
    public = await env.create(admin, name="pub", visibility="public")
    theirs = await env.create(beta, name="theirs")

    async def ids(**params: object) -> set[str]:
        return set(await env.list_ids(alpha, params))

    everything = await ids()
    assert everything == {small["id"], big["id"], queued["id"], public["id"]}  # not beta's shared image
    assert theirs["id"] not in everything
    assert await ids(name="small") == {small["id"]}
    assert await ids(name="nothing") == set()
    assert await ids(status="active") == {small["id"], big["id"]}
    assert await ids(status="queued") == {queued["id"], public["id"]}
    assert await ids(visibility="private") == {queued["id"]}
    assert await ids(visibility="public") == {public["id"]}
    assert await ids(visibility="shared") == {small["id"], big["id"]}
    assert await ids(owner=alpha.id) == {small["id"], big["id"], queued["id"]}
    assert await ids(tag="a") == {small["id"], big["id"]}
    assert set(await env.list_ids(alpha, [("tag", "a"), ("tag", "b")])) == {small["id"]}  # all tags must match
    assert set(await env.list_ids(alpha, [("tag", "b"), ("tag", "zzz")])) == set()
    assert await ids(size_min=101) == {big["id"]}
    assert await ids(size_max=100) == {small["id"]}
    assert await ids(size_min=100, size_max=5000) == {small["id"], big["id"]}
    assert await ids(disk_format="ami") == {big["id"]}
    assert await ids(disk_format="raw") == {small["id"]}
    assert await ids(name="in:small,empty") == {small["id"], queued["id"]}
    assert await ids(id=f"in:{big['id']},{public['id']}") == {big["id"], public["id"]}
    assert await ids(name="small", status="queued") == set()  # filters combine
    assert await ids(container_format="ami") == {big["id"]}
    r = await env.client.get(IMAGES, headers=alpha.headers, params={"size_min": "lots"})
    assert r.status_code == 400


async def test_list_filter_on_custom_property(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    deb = await env.create(alpha, name="deb", os_distro="debian")
    await env.create(alpha, name="ubu", os_distro="ubuntu")
    assert await env.list_ids(alpha, {"os_distro": "debian"}) == [deb["id"]]


async def test_list_created_at_filter(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="timed")
    now = dt.datetime.now(dt.UTC)
    past = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await env.list_ids(alpha, {"created_at": f"gt:{past}"}) == [image["id"]]
    assert await env.list_ids(alpha, {"created_at": f"gt:{future}"}) == []
    assert await env.list_ids(alpha, {"created_at": f"lt:{future}"}) == [image["id"]]
    assert await env.list_ids(alpha, {"updated_at": f"gte:{past}"}) == [image["id"]]
    for bad in (f"between:{past}", "gt:yesterday", past):
        r = await env.client.get(IMAGES, headers=alpha.headers, params={"created_at": bad})
        assert r.status_code == 400, bad


async def test_list_sorting(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for name in ("bravo", "alpha", "delta", "charlie"):
        await env.create(alpha, name=name)

    async def names(params: object) -> list[str]:
        return [i["name"] for i in (await env.list(alpha, params))["images"]]

    assert await names({"sort_key": "name", "sort_dir": "asc"}) == ["alpha", "bravo", "charlie", "delta"]
    assert await names({"sort_key": "name", "sort_dir": "desc"}) == ["delta", "charlie", "bravo", "alpha"]
    assert await names({"sort": "name:asc"}) == ["alpha", "bravo", "charlie", "delta"]
    assert await names({"sort": "name:desc"}) == ["delta", "charlie", "bravo", "alpha"]
    assert await names({"sort": "name"}) == ["delta", "charlie", "bravo", "alpha"]  # default direction: desc
    default = await env.list(alpha)  # created_at desc, newest first
    created = [i["created_at"] for i in default["images"]]
    assert created == sorted(created, reverse=True)
    for bad in ({"sort_key": "nope"}, {"sort_dir": "sideways"}, {"sort": "name:up"},
                {"sort": "name:asc", "sort_key": "name"}):
        r = await env.client.get(IMAGES, headers=alpha.headers, params=bad)
        assert r.status_code == 400, bad


async def test_list_pagination_follows_next_links(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for i in range(5):
        await env.create(alpha, name=f"page-{i}")
    everything = await env.list_ids(alpha, {"sort": "name:asc"})
    assert len(everything) == 5
    first = await env.list(alpha, {"sort": "name:asc", "limit": 2})
    assert first["first"] == "/v2/images" and first["schema"] == "/v2/schemas/images"
    assert len(first["images"]) == 2
    assert first["next"].startswith("/v2/images?")
    query = parse_qs(urlsplit(first["next"]).query)
    assert query["marker"] == [first["images"][-1]["id"]] and query["limit"] == ["2"]
    assert query["sort"] == ["name:asc"]
    seen = [i["id"] for i in first["images"]]
    link: str | None = first["next"]
    pages = 1
    while link:
        r = await env.client.get(f"/image{link}", headers=alpha.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["images"]) <= 2
        seen += [i["id"] for i in page["images"]]
        link = page.get("next")
        pages += 1
    assert seen == everything
    assert pages == 3
    # marker alone: everything after it
    assert await env.list_ids(alpha, {"sort": "name:asc", "marker": everything[1]}) == everything[2:]
    assert await env.list_ids(alpha, {"limit": 0}) == []


async def test_list_bad_query(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    await env.create(alpha, name="one")
    hidden = await env.create(beta, name="beta's", visibility="private")
    for params in ({"marker": "5a0b0c6e-7c3b-4b1c-9f1e-000000000000"}, {"marker": "not-a-uuid"},
                   {"marker": hidden["id"]},  # exists, but alpha cannot see it
                   {"limit": "ten"}, {"limit": "-1"}, {"visibility": "secret"}, {"member_status": "maybe"},
                   {"changes-since": "2020-01-01T00:00:00Z"}, {"protected": "perhaps"}):
        r = await env.client.get(IMAGES, headers=alpha.headers, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["code"] == "400 Bad Request"


async def test_os_hidden_images_are_listed_only_on_request(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    shown = await env.create(alpha, name="shown")
    hidden = await env.create(alpha, name="hidden", os_hidden=True)
    assert await env.list_ids(alpha) == [shown["id"]]
    assert await env.list_ids(alpha, {"os_hidden": "true"}) == [hidden["id"]]
    assert (await env.show(alpha, hidden["id"]))["os_hidden"] is True


# -- JSON-patch update --------------------------------------------------------------------------------

async def test_patch_add_replace_remove(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="before", os_distro="debian", to_drop="x")
    r = await env.patch(alpha, image["id"], [
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "add", "path": "/min_ram", "value": 1024},
        {"op": "replace", "path": "/min_disk", "value": 3},
        {"op": "add", "path": "/disk_format", "value": "qcow2"},
        {"op": "add", "path": "/tags", "value": ["t1", "t2"]},
        {"op": "add", "path": "/os_version", "value": "12"},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "add", "path": "/os_distro", "value": "fedora"},  # add on an existing property replaces it
        {"op": "remove", "path": "/to_drop"},
        {"op": "add", "path": "/a~1b", "value": "slash"},  # JSON pointer escape: key "a/b"
    ])
    updated = r.json()
    assert updated["name"] == "after"
    assert (updated["min_ram"], updated["min_disk"]) == (1024, 3)
    assert updated["disk_format"] == "qcow2"
    assert sorted(updated["tags"]) == ["t1", "t2"]
    assert updated["os_version"] == "12" and updated["os_distro"] == "fedora"
    assert "to_drop" not in updated
    assert updated["a/b"] == "slash"
    assert updated["updated_at"] >= image["updated_at"]
    assert await env.show(alpha, image["id"]) == updated
    # an empty patch is valid and changes nothing
    assert (await env.patch(alpha, image["id"], [])).json()["name"] == "after"


async def test_patch_visibility_and_protected(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="v")
    for visibility in ("private", "community", "shared"):
        r = await env.patch(alpha, image["id"], [{"op": "replace", "path": "/visibility", "value": visibility}])
        assert r.json()["visibility"] == visibility
    r = await env.patch(alpha, image["id"], [{"op": "replace", "path": "/protected", "value": True}])
    assert r.json()["protected"] is True


async def test_patch_read_only_reserved_and_core_removal_are_forbidden(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="ro")
    for attr in ("id", "status", "checksum", "size", "virtual_size", "created_at", "updated_at", "os_hash_algo",
                 "os_hash_value", "file", "self", "schema", "direct_url"):
        for op in ("replace", "add", "remove"):
            r = await env.patch(alpha, image["id"], [{"op": op, "path": f"/{attr}", "value": "x"}], expect=403)
            assert r.json()["message"] == f"Attribute '{attr}' is read-only."
    await env.patch(alpha, image["id"], [{"op": "add", "path": "/deleted", "value": "x"}], expect=403)
    await env.patch(alpha, image["id"], [{"op": "remove", "path": "/name"}], expect=403)
    await env.patch(alpha, image["id"], [{"op": "remove", "path": "/min_ram"}], expect=403)


async def test_patch_missing_property_conflicts(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="c")
    r = await env.patch(alpha, image["id"], [{"op": "remove", "path": "/nope"}], expect=409)
    assert r.json()["message"] == "Property nope does not exist."
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/nope", "value": "x"}], expect=409)


BAD_PATCHES = [
    {"op": "replace", "path": "/name", "value": "x"},  # not a list
    "replace",
    [["replace", "/name", "x"]],  # operations must be objects
    [{"op": "move", "path": "/name", "value": "x"}],  # unknown op
    [{"path": "/name", "value": "x"}],  # no op
    [{"op": "replace", "value": "x"}],  # no path
    [{"op": "replace", "path": "/name"}],  # no value
    [{"op": "add", "path": "/custom", "value": 5}],  # custom properties are strings
    [{"op": "add", "path": "/custom", "value": None}],
    [{"op": "add", "path": "/custom", "value": ["x"]}],
    [{"op": "replace", "path": "/min_ram", "value": "lots"}],
    [{"op": "replace", "path": "/min_disk", "value": -1}],
    [{"op": "replace", "path": "/protected", "value": "yes"}],
    [{"op": "replace", "path": "/visibility", "value": "everyone"}],
    [{"op": "replace", "path": "/disk_format", "value": "floppy"}],
    [{"op": "replace", "path": "/container_format", "value": "box"}],
    [{"op": "replace", "path": "/tags", "value": "not-a-list"}],
    [{"op": "replace", "path": "/name", "value": "n" * 256}],
    [{"op": "add", "path": "/" + "k" * 256, "value": "long key"}],
    *[[{"op": "replace", "path": path, "value": "x"}] for path in ("/a/b", "name", "/", "", "//x", 7, None)],
]


async def test_patch_invalid_body(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="body")
    for ops in BAD_PATCHES:
        r = await env.client.patch(f"{IMAGES}/{image['id']}",
                                   headers={**alpha.headers, "Content-Type": PATCH_TYPE}, json=ops)
        assert r.status_code == 400, (ops, r.text)
        assert r.json()["code"] == "400 Bad Request"
    r = await env.client.patch(f"{IMAGES}/{image['id']}", headers={**alpha.headers, "Content-Type": PATCH_TYPE},
                               content=b"[{")
    assert r.status_code == 400
    assert await env.show(alpha, image["id"]) == image


async def test_kernel_and_ramdisk_ids_are_image_uuids(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    kernel = "5a0b0c6e-7c3b-4b1c-9f1e-222222222222"
    image = await env.create(alpha, name="ami", kernel_id=kernel, ramdisk_id=None)
    assert image["kernel_id"] == kernel and image["ramdisk_id"] is None
    await env.create(alpha, expect=400, name="bad", kernel_id="vmlinuz")
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/ramdisk_id", "value": "initrd"}], expect=400)
    r = await env.patch(alpha, image["id"], [{"op": "replace", "path": "/kernel_id", "value": None}])
    assert r.json()["kernel_id"] is None


async def test_patch_is_all_or_nothing(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="atomic", keep="1")
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/name", "value": "changed"},
                                         {"op": "remove", "path": "/keep"},
                                         {"op": "remove", "path": "/missing"}], expect=409)
    shown = await env.show(alpha, image["id"])
    assert shown["name"] == "atomic" and shown["keep"] == "1"


async def test_patch_wrong_content_type(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="ct")
    for content_type in ("application/json", "application/json-patch+json", "text/plain", None):
        headers = dict(alpha.headers)
        if content_type:
            headers["Content-Type"] = content_type
        r = await env.client.request("PATCH", f"{IMAGES}/{image['id']}", headers=headers,
                                     content=b'[{"op": "replace", "path": "/name", "value": "x"}]')
        assert r.status_code == 415, (content_type, r.text)
        assert PATCH_TYPE in r.headers["Accept-Patch"]
    assert (await env.show(alpha, image["id"]))["name"] == "ct"


async def test_patch_format_of_an_active_image_is_forbidden(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.active(alpha, b"x" * 10)
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}], expect=403)
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/container_format", "value": "ovf"}],
                    expect=403)
    # setting the same value is not a change
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}])


async def test_patch_owner_needs_admin(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    image = await env.create(alpha, name="own")
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/owner", "value": beta.id}], expect=403)
    r = await env.patch(admin, image["id"], [{"op": "replace", "path": "/owner", "value": beta.id}])
    assert r.json()["owner"] == beta.id


async def test_patch_unknown_image(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    await env.patch(alpha, "5a0b0c6e-7c3b-4b1c-9f1e-000000000000",
                    [{"op": "replace", "path": "/name", "value": "x"}], expect=404)


async def test_property_quota(cloud_with) -> None:  # type: ignore[no-untyped-def]
    async with cloud_with(image__image_property_quota=2, image__image_tag_quota=1) as env:
        alpha = await env.project("alpha")
        image = await env.create(alpha, name="q", p1="1", p2="2")
        r = await env.patch(alpha, image["id"], [{"op": "add", "path": "/p3", "value": "3"}], expect=413)
        assert "properties" in r.json()["message"]
        await env.patch(alpha, image["id"], [{"op": "remove", "path": "/p1"},
                                             {"op": "add", "path": "/p3", "value": "3"}])
        await env.create(alpha, expect=413, name="too many", a="1", b="2", c="3")
        await env.create(alpha, expect=413, name="tags", tags=["1", "2"])
        r = await env.client.put(f"{IMAGES}/{image['id']}/tags/one", headers=alpha.headers)
        assert r.status_code == 204
        r = await env.client.put(f"{IMAGES}/{image['id']}/tags/two", headers=alpha.headers)
        assert r.status_code == 413


# -- delete -------------------------------------------------------------------------------------------

async def test_delete(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.active(alpha, b"delete me")
    assert len(env.stored_files()) == 1
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 204 and r.content == b""
    await env.show(alpha, image["id"], expect=404)
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 404
    await env.download(alpha, image["id"], expect=404)
    assert env.stored_files() == []
    assert image["id"] not in await env.list_ids(alpha)


async def test_protected_image_cannot_be_deleted(env: ImageEnv) -> None:
    alpha, admin = await env.project("alpha"), await env.admin()
    image = await env.create(alpha, name="keep", protected=True)
    for who in (alpha, admin):
        r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=who.headers)
        assert r.status_code == 403, r.text
        assert "protected" in r.json()["message"]
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 204


# -- deactivate / reactivate --------------------------------------------------------------------------

async def test_deactivate_and_reactivate(env: ImageEnv) -> None:
    alpha, admin = await env.project("alpha"), await env.admin()
    image = await env.active(alpha, b"payload")
    url = f"{IMAGES}/{image['id']}/actions"
    r = await env.client.post(f"{url}/deactivate", headers=alpha.headers)
    assert r.status_code == 403
    r = await env.client.post(f"{url}/deactivate", headers=admin.headers)
    assert r.status_code == 204
    assert (await env.show(alpha, image["id"]))["status"] == "deactivated"
    r = await env.client.post(f"{url}/deactivate", headers=admin.headers)  # again: a no-op
    assert r.status_code == 204
    r = await env.download(alpha, image["id"], expect=403)
    assert "deactivated" in r.json()["message"]
    assert (await env.download(admin, image["id"])).content == b"payload"
    r = await env.client.post(f"{url}/reactivate", headers=alpha.headers)
    assert r.status_code == 403
    r = await env.client.post(f"{url}/reactivate", headers=admin.headers)
    assert r.status_code == 204
    assert (await env.show(alpha, image["id"]))["status"] == "active"
    assert (await env.download(alpha, image["id"])).content == b"payload"


async def test_deactivate_a_queued_image_is_forbidden(env: ImageEnv) -> None:
    alpha, admin = await env.project("alpha"), await env.admin()
    image = await env.create(alpha, name="queued")
    for action in ("deactivate", "reactivate"):
        r = await env.client.post(f"{IMAGES}/{image['id']}/actions/{action}", headers=admin.headers)
        assert r.status_code == 403, r.text
    r = await env.client.post(f"{IMAGES}/5a0b0c6e-7c3b-4b1c-9f1e-000000000000/actions/deactivate",
                              headers=admin.headers)
    assert r.status_code == 404


# -- tags ---------------------------------------------------------------------------------------------

async def test_tags(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="tagged", tags=["old"])
    url = f"{IMAGES}/{image['id']}/tags"
    r = await env.client.put(f"{url}/new", headers=alpha.headers)
    assert r.status_code == 204 and r.content == b""
    r = await env.client.put(f"{url}/new", headers=alpha.headers)  # idempotent
    assert r.status_code == 204
    assert sorted((await env.show(alpha, image["id"]))["tags"]) == ["new", "old"]
    assert await env.list_ids(alpha, {"tag": "new"}) == [image["id"]]
    r = await env.client.delete(f"{url}/old", headers=alpha.headers)
    assert r.status_code == 204
    assert (await env.show(alpha, image["id"]))["tags"] == ["new"]
    r = await env.client.delete(f"{url}/old", headers=alpha.headers)
    assert r.status_code == 404
    r = await env.client.put(f"{url}/{'t' * 256}", headers=alpha.headers)
    assert r.status_code == 400
    # another project cannot even see the (shared, not shared-with-it) image
    r = await env.client.put(f"{url}/evil", headers=beta.headers)
    assert r.status_code == 404


# -- visibility ---------------------------------------------------------------------------------------

async def test_publicize_needs_admin(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    r = await env.client.post(IMAGES, headers=alpha.headers, json={"name": "pub", "visibility": "public"})
    assert r.status_code == 403
    image = await env.create(alpha, name="later")
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}], expect=403)
    assert (await env.show(alpha, image["id"]))["visibility"] == "shared"
    r = await env.patch(admin, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}])
    assert r.json()["visibility"] == "public"
    # now everyone sees (and lists) it, but only the owner changes it
    assert image["id"] in await env.list_ids(beta)
    await env.show(beta, image["id"])
    await env.patch(beta, image["id"], [{"op": "replace", "path": "/name", "value": "mine"}], expect=403)
    public = await env.create(admin, name="admin-public", visibility="public")
    assert public["visibility"] == "public"


async def test_private_image_is_invisible_to_others(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="secret", visibility="private")
    await env.show(beta, image["id"], expect=404)
    assert image["id"] not in await env.list_ids(beta, {"visibility": "all"})
    assert image["id"] not in await env.list_ids(beta, {"visibility": "private"})
    assert await env.list_ids(alpha, {"visibility": "private"}) == [image["id"]]


async def test_community_visibility(env: ImageEnv) -> None:
    alpha, beta, admin = await env.project("alpha"), await env.project("beta"), await env.admin()
    community = await env.active(alpha, b"community bytes", name="comm", visibility="community")
    # the owner lists it by default; others only when they ask for community images
    assert community["id"] in await env.list_ids(alpha)
    assert community["id"] not in await env.list_ids(beta)
    assert await env.list_ids(beta, {"visibility": "community"}) == [community["id"]]
    assert community["id"] in await env.list_ids(beta, {"visibility": "all"})
    # anyone may use it by id: show and download
    assert (await env.show(beta, community["id"]))["visibility"] == "community"
    assert (await env.download(beta, community["id"])).content == b"community bytes"
    # but not change it
    await env.patch(beta, community["id"], [{"op": "replace", "path": "/name", "value": "x"}], expect=403)
    r = await env.client.delete(f"{IMAGES}/{community['id']}", headers=beta.headers)
    assert r.status_code == 403
    # admins see community images only when they ask (unless their project owns them)
    assert community["id"] not in await env.list_ids(admin)
    assert community["id"] in await env.list_ids(admin, {"visibility": "community"})
    own = await env.create(admin, name="admin-comm", visibility="community")
    assert own["id"] in await env.list_ids(admin)
    # a community image cannot have members
    await env.add_member(alpha, community["id"], beta.id, expect=403)


async def test_admin_sees_every_image(env: ImageEnv) -> None:
    alpha, admin = await env.project("alpha"), await env.admin()
    private = await env.create(alpha, name="p", visibility="private")
    shared = await env.create(alpha, name="s")
    listed = await env.list_ids(admin)
    assert private["id"] in listed and shared["id"] in listed
    assert (await env.show(admin, private["id"]))["owner"] == alpha.id


# -- schemas ------------------------------------------------------------------------------------------

async def test_schemas(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for name in ("image", "images", "member", "members"):
        r = await env.client.get(f"/image/v2/schemas/{name}", headers=alpha.headers)
        assert r.status_code == 200, name
        assert r.headers["Content-Type"].startswith("application/json")
        schema = r.json()
        assert schema["name"] == name
        assert isinstance(schema["properties"], dict) and schema["properties"]
    image = (await env.client.get("/image/v2/schemas/image", headers=alpha.headers)).json()
    props = image["properties"]
    for core in ("id", "name", "status", "visibility", "protected", "checksum", "size", "disk_format",
                 "container_format", "min_ram", "min_disk", "tags", "owner", "os_hash_value", "created_at"):
        assert core in props, core
    assert "qcow2" in props["disk_format"]["enum"] and "bare" in props["container_format"]["enum"]
    assert props["visibility"]["enum"] == ["community", "public", "private", "shared"]
    assert image["additionalProperties"] == {"type": "string"}
    members = (await env.client.get("/image/v2/schemas/members", headers=alpha.headers)).json()
    assert members["properties"]["members"]["items"]["name"] == "member"
    r = await env.client.get("/image/v2/schemas/nothing", headers=alpha.headers)
    assert r.status_code == 404
