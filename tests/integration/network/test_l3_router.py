"""A hand-built router namespace with two internal legs and a gateway: NAT and the metadata proxy, for real.

Topology (all veths between namespaces, nothing in the host namespace)::

    vm  10.A.B.5 --- qr1 10.A.B.1 \\                         / 172.X.Y.10 (+ .20/32 floating)
                                    qrouter-<uuid>  qg ----+
    vm2 10.A.C.5 --- qr2 10.A.C.1 /                         \\--- ext 172.X.Y.1 (no route to 10.A.*)

The external host has no route back to the internal subnets, so any reply it
manages to send proves the router NATed the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import http.server
import json
import os
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from nettest import Scratch, in_ns, sh

from kumo.compute.metadata.api import sign_instance_id
from kumo.network.dataplane.base import (
    METADATA_PROXY_PORT,
    FixedIP,
    FloatingMapping,
    MetadataClient,
    RouterInterface,
    RouterPlan,
)
from kumo.network.l3 import MetadataProxy, RouterNat

pytestmark = pytest.mark.root

PORT = 5000
SECRET = "s3cret-" + uuid.uuid4().hex


# --- local helpers ---------------------------------------------------------------------------------------------


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):
        os.setns(fd, os.CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def ns_socket(namespace: str) -> socket.socket:
    """A TCP socket made inside ``namespace`` by a throwaway thread (the socket stays there)."""
    out: dict[str, object] = {}

    def run() -> None:
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
            out["sock"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["sock"]  # type: ignore[return-value]


def listen(namespace: str, port: int = PORT) -> socket.socket:
    sock = ns_socket(namespace)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(8)
    sock.settimeout(5)
    return sock


def connect(namespace: str, address: str, port: int = PORT, timeout: float = 3) -> socket.socket:
    sock = ns_socket(namespace)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def peer_seen(server_ns: str, client_ns: str, address: str) -> str:
    """Connect from ``client_ns`` to ``address`` and return the source address the listener in ``server_ns`` saw."""
    with listen(server_ns) as server, connect(client_ns, address):
        conn, (peer, _port) = server.accept()
        conn.close()
        return peer


def ping(namespace: str, address: str) -> bool:
    return in_ns(namespace, "busybox", "ping", "-c", "1", "-W", "2", address, check=False).returncode == 0


def wget(namespace: str, *args: str) -> tuple[int, str, str]:
    """busybox wget, no proxy from the environment (its -T option crashes busybox 1.35: the timeout is ours)."""
    done = in_ns(namespace, "busybox", "wget", "-Y", "off", "-q", "-O", "-", *args, check=False)
    return done.returncode, done.stdout, done.stderr


def veth(a_ns: str, a_name: str, b_ns: str, b_name: str) -> None:
    """A veth from one namespace straight into another (created in ``a_ns``; the host namespace never sees it)."""
    sh("ip", "-n", a_ns, "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b_ns)
    for ns, name in ((a_ns, a_name), (b_ns, b_name)):
        sh("ip", "-n", ns, "link", "set", name, "up")


def addr(namespace: str, cidr: str, dev: str) -> None:
    sh("ip", "-n", namespace, "addr", "add", cidr, "dev", dev)


def leg(name: str, cidr: str, gateway: str | None = None) -> RouterInterface:
    address, prefixlen = cidr.split("/")
    return RouterInterface(port_id=name, name=name, tap="tap" + name[3:], bridge="brqtest", mac_address="",
                           addresses=(FixedIP(address, int(prefixlen), gateway=gateway),), mtu=1500)


@dataclass
class Topology:
    router_id: str
    router: str
    vm: str
    vm2: str
    ext: str
    qr1: str
    qr2: str
    qg: str
    net1: str  # "10.A.B"
    net2: str  # "10.A.C"
    outside: str  # "172.X.Y"

    def plan(self, *, floating: bool = True, enable_snat: bool = True) -> RouterPlan:
        mappings = (FloatingMapping(f"{self.outside}.20", f"{self.net1}.5"),) if floating else ()
        return RouterPlan(
            router_id=self.router_id, namespace=self.router,
            interfaces=(leg(self.qr1, f"{self.net1}.1/24"), leg(self.qr2, f"{self.net2}.1/24")),
            gateway=leg(self.qg, f"{self.outside}.10/24", gateway=f"{self.outside}.1"),
            enable_snat=enable_snat, floating=mappings)


@pytest.fixture
def topo(scratch: Scratch) -> Iterator[Topology]:
    router_id = str(uuid.uuid4())
    router = f"qrouter-{router_id}"
    sh("ip", "netns", "add", router)
    scratch.namespaces.append(router)
    in_ns(router, "ip", "link", "set", "lo", "up")
    in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    a, b = random.randrange(256), random.randrange(0, 254, 2)
    tag = uuid.uuid4().hex[:8]
    t = Topology(router_id, router, scratch.namespace("ktvm"), scratch.namespace("ktvm"), scratch.namespace("ktext"),
                 f"qr-{tag}a", f"qr-{tag}b", f"qg-{tag}", f"10.{a}.{b}", f"10.{a}.{b + 1}",
                 f"172.{random.randrange(16, 32)}.{random.randrange(256)}")
    for qr, vm, net in ((t.qr1, t.vm, t.net1), (t.qr2, t.vm2, t.net2)):
        veth(router, qr, vm, "eth0")
        addr(router, f"{net}.1/24", qr)
        addr(vm, f"{net}.5/24", "eth0")
        sh("ip", "-n", vm, "route", "add", "default", "via", f"{net}.1")
    veth(router, t.qg, t.ext, "eth0")
    addr(router, f"{t.outside}.10/24", t.qg)
    addr(router, f"{t.outside}.20/32", t.qg)
    addr(t.ext, f"{t.outside}.1/24", "eth0")
    sh("ip", "-n", router, "route", "add", "default", "via", f"{t.outside}.1")
    yield t


def tables(namespace: str) -> str:
    return in_ns(namespace, "nft", "list", "tables").stdout


# --- NAT ------------------------------------------------------------------------------------------------------


def test_snat_floating_ip_and_east_west(topo: Topology) -> None:
    nat = RouterNat()
    assert not ping(topo.vm2, f"{topo.outside}.1")  # no NAT yet: the outside cannot answer 10.A.C.5
    nat.apply(topo.plan())
    nat.apply(topo.plan())  # idempotent

    # SNAT: the VM without a floating IP reaches the outside as the gateway address.
    assert ping(topo.vm2, f"{topo.outside}.1")
    assert peer_seen(topo.ext, topo.vm2, f"{topo.outside}.1") == f"{topo.outside}.10"
    # Floating IP: reachable from outside (DNAT to the VM, source untouched), and the VM leaves as it.
    assert ping(topo.ext, f"{topo.outside}.20")
    assert peer_seen(topo.vm, topo.ext, f"{topo.outside}.20") == f"{topo.outside}.1"
    assert peer_seen(topo.ext, topo.vm, f"{topo.outside}.1") == f"{topo.outside}.20"
    # East-west is routed, not NATed.
    assert peer_seen(topo.vm, topo.vm2, f"{topo.net1}.5") == f"{topo.net2}.5"
    assert peer_seen(topo.vm2, topo.vm, f"{topo.net2}.5") == f"{topo.net1}.5"

    # Without the mapping the floating IP leads nowhere (the router itself refuses) and the VM leaves as .10.
    nat.apply(topo.plan(floating=False))
    with listen(topo.vm), pytest.raises(ConnectionRefusedError):
        connect(topo.ext, f"{topo.outside}.20")
    assert peer_seen(topo.ext, topo.vm, f"{topo.outside}.1") == f"{topo.outside}.10"

    # Without SNAT, internal addresses leave unchanged and the outside cannot answer them.
    nat.apply(topo.plan(floating=False, enable_snat=False))
    assert not ping(topo.vm2, f"{topo.outside}.1")

    nat.remove(topo.router)
    nat.remove(topo.router)  # idempotent
    assert "kumo-nat" not in tables(topo.router)
    nat.remove("qrouter-" + str(uuid.uuid4()))  # a namespace that is gone: nothing to do


def test_a_removed_floating_ip_takes_its_connections_with_it(topo: Topology) -> None:
    nat = RouterNat()
    nat.apply(topo.plan())
    with listen(topo.vm) as server, connect(topo.ext, f"{topo.outside}.20") as client:
        conn, _ = server.accept()
        with conn:
            client.sendall(b"a")
            assert conn.recv(1) == b"a"
            nat.apply(topo.plan(floating=False))
            # The next segment is no longer translated: the router itself answers it with a reset, and the VM
            # hears nothing (without the conntrack cleanup the old DNAT would carry it on).
            client.sendall(b"b")
            with pytest.raises(ConnectionResetError):
                client.recv(1)
            conn.settimeout(1)
            with pytest.raises(TimeoutError):
                conn.recv(1)
    nat.remove(topo.router)


def test_only_our_table_is_touched(topo: Topology) -> None:
    in_ns(topo.router, "nft", "add", "table", "inet", "someone-else")
    nat = RouterNat()
    nat.apply(topo.plan())
    nat.remove(topo.router)
    assert "someone-else" in tables(topo.router)


# --- metadata proxy -------------------------------------------------------------------------------------------


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """The stand-in metadata API: answers what it was sent, as JSON."""

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                            "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _echo

    def log_message(self, fmt: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def upstream() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def listening(namespace: str) -> bool:
    return bool(in_ns(namespace, "ss", "-Hltn", f"sport = :{METADATA_PROXY_PORT}").stdout.strip())


def raw_request(namespace: str, address: str, request: bytes) -> bytes:
    with connect(namespace, address, 80) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_metadata_proxy(topo: Topology) -> None:
    RouterNat().apply(topo.plan())
    vm_address = f"{topo.net1}.5"
    me = MetadataClient(vm_address, str(uuid.uuid4()), uuid.uuid4().hex)
    url = "http://169.254.169.254/openstack/latest/meta_data.json"
    with upstream() as api:
        proxy = MetadataProxy(f"http://127.0.0.1:{api.server_address[1]}", SECRET)
        try:
            await proxy.start(topo.router_id, topo.router, [me])
            await proxy.start(topo.router_id, topo.router, [me])  # idempotent
            assert proxy.running() == {topo.router_id}
            assert listening(topo.router)

            # A known guest: its identity, signed; spoofed identity headers from the guest are dropped.
            rc, out, err = await asyncio.to_thread(wget, topo.vm, "--header", "X-Instance-ID: not-me", url)
            assert rc == 0, err
            echo = json.loads(out)
            assert echo["method"] == "GET" and echo["path"] == "/openstack/latest/meta_data.json"
            headers = {k.lower(): v for k, v in echo["headers"].items()}
            assert headers["x-instance-id"] == me.instance_id
            assert headers["x-tenant-id"] == me.project_id
            assert headers["x-instance-id-signature"] == sign_instance_id(SECRET, me.instance_id)
            assert headers["x-forwarded-for"] == vm_address

            # POST with a body and a query string.
            rc, out, err = await asyncio.to_thread(wget, topo.vm, "--post-data", "pw=1",
                                                   "http://169.254.169.254/openstack/2013-04-04/password?x=1")
            assert rc == 0, err
            echo = json.loads(out)
            assert (echo["method"], echo["path"], echo["body"]) == ("POST", "/openstack/2013-04-04/password?x=1",
                                                                    "pw=1")
            assert "application/x-www-form-urlencoded" in {v for k, v in echo["headers"].items()
                                                           if k.lower() == "content-type"}

            # Too big a body.
            big = await asyncio.to_thread(raw_request, topo.vm, "169.254.169.254",
                                          b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n")
            assert big.startswith(b"HTTP/1.1 413 ")

            # An address the router does not know: 404, until the client map names it.
            rc, out, err = await asyncio.to_thread(wget, topo.vm2, url)
            assert rc != 0 and "404" in err
            other = MetadataClient(f"{topo.net2}.5", str(uuid.uuid4()), uuid.uuid4().hex)
            await proxy.start(topo.router_id, topo.router, [me, other])
            rc, out, err = await asyncio.to_thread(wget, topo.vm2, url)
            assert rc == 0, err
            assert json.loads(out)["headers"]["X-Instance-ID"] == other.instance_id

            # The outside cannot reach the proxy port directly.
            with pytest.raises(OSError):
                await asyncio.to_thread(connect, topo.ext, f"{topo.outside}.10", METADATA_PROXY_PORT, 1)
        finally:
            await proxy.stop_all()
    assert proxy.running() == set() and not listening(topo.router)

    # Upstream unreachable (a port bound but not listening refuses connections): 500.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        dead = MetadataProxy(f"http://127.0.0.1:{reserved.getsockname()[1]}", SECRET)
        try:
            await dead.start(topo.router_id, topo.router, [me])
            rc, out, err = await asyncio.to_thread(wget, topo.vm, url)
            assert rc != 0 and "500" in err

            await dead.stop(topo.router_id)
            await dead.stop(topo.router_id)  # idempotent
            assert dead.running() == set()
            assert not listening(topo.router)
            rc, out, err = await asyncio.to_thread(wget, topo.vm, url)
            assert rc != 0 and "refused" in err.lower()
        finally:
            await dead.stop_all()
    assert not listening(topo.router)
