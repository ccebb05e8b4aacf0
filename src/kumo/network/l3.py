"""What runs inside a router namespace ``qrouter-<id>``: its NAT and its metadata proxy (Neutron's L3 agent).

Another driver makes the namespace, its ``qr-``/``qg-`` legs with their
addresses (floating IPs are extra /32s on the ``qg-`` leg), routes and
forwarding. This module adds the two things the kernel cannot do alone:

* :class:`RouterNat` loads one nftables table, ``ip kumo-nat``, into the
  namespace in a single atomic transaction: floating IPs are DNATed to their
  fixed IPs and their fixed IPs SNATed back; the rest of the internal subnets
  leave through the gateway SNATed to the gateway's address (when SNAT is
  enabled); guests' ``169.254.169.254:80`` is redirected to the proxy's port.
  Traffic between internal legs is routed untouched.
* :class:`MetadataProxy` listens on :data:`METADATA_PROXY_PORT` *inside* each
  router namespace but forwards from the host namespace to the metadata API,
  naming the guest by its source address with the signed headers the API
  checks (see :mod:`kumo.compute.metadata.api`).

Only the ``ip`` family is handled: metadata and NAT are IPv4 things in
Neutron too (IPv6 is routed without NAT).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import logging
import os
import re
import socket
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx

from kumo.compute.metadata.api import sign_instance_id
from kumo.network import conntrack
from kumo.network.dataplane.base import (
    METADATA_ADDRESS,
    METADATA_PROXY_PORT,
    FloatingMapping,
    MetadataClient,
    RouterInterface,
    RouterPlan,
)
from kumo.network.dataplane.netns import in_namespace

log = logging.getLogger("kumo.network.l3")

#: The only nftables table Kumo touches inside a router namespace.
NAT_TABLE = "kumo-nat"
NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_NSNAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class NatError(RuntimeError):
    """nft refused a router's ruleset (the message carries nft's stderr)."""


# --- nftables -------------------------------------------------------------------------------------------------


def render_router_nat(plan: RouterPlan) -> str:
    """The nft script that makes table ``ip kumo-nat`` match ``plan``, as one transaction.

    It first declares the table (a no-op when present) and deletes it, then
    defines it afresh: ``nft -f`` applies the whole script atomically, so
    packets see either the old rules or the new ones, and rules of a previous
    plan never linger. Values are validated, never pasted raw, because the
    text is a program.
    """
    lines = [f"table ip {NAT_TABLE} {{", "}", f"delete table ip {NAT_TABLE}", f"table ip {NAT_TABLE} {{"]
    lines += _chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;", _dstnat_rules(plan))
    lines += _chain("input", "type filter hook input priority filter; policy accept;", _input_rules())
    lines += _chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                    _srcnat_rules(plan))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(name: str, header: str, rules: Iterable[str]) -> list[str]:
    return [f"\tchain {name} {{", f"\t\t{header}", *(f"\t\t{rule}" for rule in rules), "\t}"]


def _dstnat_rules(plan: RouterPlan) -> list[str]:
    """Metadata redirect (guests only, hence ``qr-*``), then one DNAT per floating IP."""
    rules = [f'iifname "qr-*" ip daddr {METADATA_ADDRESS} tcp dport 80 redirect to :{METADATA_PROXY_PORT}']
    if plan.gateway is not None:
        rules += [f"ip daddr {floating} dnat to {fixed}" for floating, fixed in _floating_pairs(plan)]
    return rules


def _input_rules() -> list[str]:
    """The proxy binds 0.0.0.0 (the redirect lands on the qr- leg's address); keep the outside off it."""
    return [f'iifname != "qr-*" tcp dport {METADATA_PROXY_PORT} drop']


def _srcnat_rules(plan: RouterPlan) -> list[str]:
    """Floating IPs' own SNAT first (first match wins), then the router-wide SNAT to the gateway address.

    Both match only on the way out of the ``qg-`` leg, so east-west traffic
    between ``qr-`` legs is never rewritten.
    """
    gateway = plan.gateway
    if gateway is None:
        return []
    out = _quoted_ifname(gateway.name)
    rules = [f"oifname {out} ip saddr {fixed} snat to {floating}" for floating, fixed in _floating_pairs(plan)]
    source = _first_ipv4(gateway)
    subnets = _internal_subnets(plan.interfaces)
    if plan.enable_snat and source and subnets:
        rules.append(f"oifname {out} ip saddr {{ {', '.join(subnets)} }} snat to {source}")
    return rules


def _floating_pairs(plan: RouterPlan) -> list[tuple[str, str]]:
    """(floating, fixed) IPv4 pairs, sorted so the same plan always renders the same text."""
    pairs = set()
    for mapping in plan.floating:
        floating, fixed = _ipv4(mapping.floating_ip), _ipv4(mapping.fixed_ip)
        if floating and fixed:
            pairs.add((floating, fixed))
    return sorted(pairs, key=lambda p: ipaddress.IPv4Address(p[0]))


def _internal_subnets(interfaces: Sequence[RouterInterface]) -> list[str]:
    nets = {ipaddress.ip_interface(f"{ip.address}/{ip.prefixlen}").network
            for leg in interfaces for ip in leg.addresses if _ipv4(ip.address)}
    return [str(net) for net in sorted(nets)]


def _first_ipv4(leg: RouterInterface) -> str | None:
    return next((addr for ip in leg.addresses if (addr := _ipv4(ip.address))), None)


def _ipv4(value: str) -> str | None:
    """The canonical IPv4 text, None for IPv6; anything else is a broken plan (ValueError)."""
    address = ipaddress.ip_address(value)
    return str(address) if address.version == 4 else None


def _quoted_ifname(name: str) -> str:
    if not _IFNAME.match(name):
        raise ValueError(f"bad interface name {name!r}")
    return f'"{name}"'


def _check_namespace(namespace: str) -> str:
    if not _NSNAME.match(namespace) or namespace in (".", ".."):
        raise ValueError(f"bad namespace name {namespace!r}")
    return namespace


class RouterNat:
    """Loads :func:`render_router_nat` into router namespaces (synchronous, idempotent, like every driver).

    Replacing the rules alone would not end connections already NATed
    (conntrack keeps a translation until the connection goes idle), so a
    floating IP that goes away, or moves to another fixed IP, has its
    connections forgotten in the router's conntrack table, as Neutron's L3
    agent does. Only mappings this driver applied are known: one removed
    while the agent was down keeps its connections until they go idle.
    """

    def __init__(self, *, ip: str = "ip", nft: str = "nft", timeout: float = 30) -> None:
        self.ip = ip
        self.nft = nft
        self.timeout = timeout
        self._floating: dict[str, frozenset[FloatingMapping]] = {}

    def apply(self, plan: RouterPlan) -> None:
        namespace = _check_namespace(plan.namespace)
        self._load(namespace, render_router_nat(plan))
        now = frozenset(plan.floating)
        gone = {m.floating_ip for m in self._floating.get(namespace, frozenset()) - now}
        self._floating[namespace] = now
        if gone:
            self._forget(namespace, gone)

    def remove(self, namespace: str) -> None:
        """Drop our table; nothing to do when the namespace (and so the table) is gone."""
        self._floating.pop(namespace, None)
        if not os.path.exists(os.path.join(NETNS_DIR, _check_namespace(namespace))):
            return
        self._load(namespace, f"table ip {NAT_TABLE} {{\n}}\ndelete table ip {NAT_TABLE}\n")

    @staticmethod
    def _forget(namespace: str, floating_ips: set[str]) -> None:
        """Connections to a floating IP (DNATed in) or answered to it (SNATed out); a failure is logged only:
        the rules are already right, and the connections end when they go idle."""
        def doomed(entry: Any) -> bool:
            return entry.tuple_orig.daddr in floating_ips or entry.tuple_reply.daddr in floating_ips

        try:
            count = in_namespace(namespace, lambda: conntrack.forget(doomed))
        except Exception:  # noqa: BLE001
            log.exception("could not forget the connections of floating IPs %s in %s", sorted(floating_ips),
                          namespace)
            return
        if count:
            log.info("forgot %d connection(s) of floating IP(s) %s in %s", count, ", ".join(sorted(floating_ips)),
                     namespace)

    def _load(self, namespace: str, script: str) -> None:
        argv = [self.ip, "netns", "exec", namespace, self.nft, "-f", "-"]
        try:
            done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise NatError(f"nft in {namespace} timed out") from exc
        if done.returncode != 0:
            raise NatError(f"nft in {namespace} failed ({done.returncode}): {done.stderr.strip()}")


class FakeRouterNat:
    """Records what :class:`RouterNat` would load, for the agent's tests (plans are still rendered, so validated)."""

    def __init__(self) -> None:
        self.plans: dict[str, RouterPlan] = {}
        self.calls: list[tuple[str, str]] = []

    def apply(self, plan: RouterPlan) -> None:
        render_router_nat(plan)
        self.plans[plan.namespace] = plan
        self.calls.append(("apply", plan.namespace))

    def remove(self, namespace: str) -> None:
        self.plans.pop(namespace, None)
        self.calls.append(("remove", namespace))

    def ruleset(self, namespace: str) -> str | None:
        plan = self.plans.get(namespace)
        return None if plan is None else render_router_nat(plan)


# --- metadata proxy -------------------------------------------------------------------------------------------

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
READ_TIMEOUT = 30.0
UPSTREAM_TIMEOUT = 30.0
METHODS = ("GET", "HEAD", "POST")
TEXT = "text/plain; charset=UTF-8"


class _Reject(Exception):
    """A request answered by the proxy itself (status and short plain body)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Listener:
    namespace: str
    identity: tuple[int, int]  # (st_dev, st_ino) of the namespace: a recreated namespace is another one
    clients: dict[str, MetadataClient]
    server: asyncio.AbstractServer | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)


def _enter_netns(fd: int) -> None:
    """setns(2) for this thread only; os.setns is Python >= 3.12, libc's works on 3.11 too."""
    if hasattr(os, "setns"):
        os.setns(fd, os.CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _listen_in(fd: int, port: int) -> socket.socket:
    """Runs in a throwaway thread: enter the namespace, make the socket (it stays in that namespace)."""
    _enter_netns(fd)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _namespace_socket(namespace: str, port: int) -> tuple[socket.socket, tuple[int, int]]:
    """A listening socket inside ``namespace``, made by a thread that ends right after.

    Never a pooled thread (asyncio.to_thread): it would stay in the router's
    namespace and later run unrelated work there.
    """
    fd = os.open(os.path.join(NETNS_DIR, _check_namespace(namespace)), os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kumo-netns") as once:
            made = asyncio.get_running_loop().run_in_executor(once, _listen_in, fd, port)
            try:
                sock = await asyncio.shield(made)
            except asyncio.CancelledError:  # the thread still finishes: close what it makes
                made.add_done_callback(lambda f: f.cancelled() or f.exception() or f.result().close())
                raise
        return sock, (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


def _canonical(address: str) -> str:
    """Keys as the kernel reports peers (``peername``), whatever spelling the plan used."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _namespace_identity(namespace: str) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.join(NETNS_DIR, _check_namespace(namespace)))
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class MetadataProxy:
    """Per-router HTTP listeners in the routers' namespaces, forwarding guests' requests to the metadata API.

    All listeners are served by the caller's event loop; only socket creation
    happens in another thread. Each answers one request per connection.
    """

    def __init__(self, metadata_url: str, shared_secret: str, *, port: int = METADATA_PROXY_PORT) -> None:
        self.metadata_url = metadata_url.rstrip("/")
        self._secret = shared_secret
        self.port = port
        self._listeners: dict[str, _Listener] = {}
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # no secret in logs or tracebacks
        return f"MetadataProxy({self.metadata_url!r}, routers={sorted(self._listeners)})"

    def running(self) -> set[str]:
        return set(self._listeners)

    async def start(self, router_id: str, namespace: str, clients: Sequence[MetadataClient]) -> None:
        """Listen for ``router_id`` in ``namespace``; when already listening there, only replace the clients."""
        by_address = {_canonical(c.address): c for c in clients}
        async with self._lock:
            current = self._listeners.get(router_id)
            if current and current.namespace == namespace and current.identity == _namespace_identity(namespace):
                current.clients = by_address
                return
            if current:
                await self._close(router_id)
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, trust_env=False, follow_redirects=False)
            sock, identity = await _namespace_socket(namespace, self.port)
            listener = _Listener(namespace, identity, by_address)

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self._connection(listener, reader, writer)

            try:
                listener.server = await asyncio.start_server(handle, sock=sock, limit=MAX_HEAD)
            except BaseException:
                sock.close()
                raise
            self._listeners[router_id] = listener
            log.info("metadata proxy of router %s listening in %s:%d", router_id, namespace, self.port)

    async def stop(self, router_id: str) -> None:
        async with self._lock:
            await self._close(router_id)

    async def stop_all(self) -> None:
        async with self._lock:
            for router_id in list(self._listeners):
                await self._close(router_id)
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    async def _close(self, router_id: str) -> None:
        """Close the listening socket and any connection still open (wait_closed would wait for them)."""
        listener = self._listeners.pop(router_id, None)
        if listener is None:
            return
        if listener.server is not None:
            listener.server.close()
        for writer in list(listener.connections):
            writer.close()
        if listener.server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.server.wait_closed(), 5)
        log.info("metadata proxy of router %s stopped", router_id)

    async def _connection(self, listener: _Listener, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        listener.connections.add(writer)
        try:
            peer = writer.get_extra_info("peername")
            source = peer[0] if peer else ""
            status, content_type, body, head = await self._answer(listener, source, reader, writer)
            writer.write(_response(status, content_type, body, head=head))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            listener.connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, listener: _Listener, source: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> tuple[int, str, bytes, bool]:
        """(status, content type, body, is HEAD) for one request."""
        head = False
        try:
            request = await _read_request(reader, writer)
            head = request.method == "HEAD"
            client = listener.clients.get(source)
            if client is None:
                log.debug("metadata request from unknown address %s", source)
                raise _Reject(404, "The resource could not be found.")
            status, content_type, body = await self._forward(request, source, client)
        except _Reject as exc:
            status, content_type, body = exc.status, TEXT, exc.body.encode()
        log.debug("metadata %s from %s: %d", "HEAD" if head else "request", source, status)
        return status, content_type, body, head

    async def _forward(self, request: _Request, source: str, client: MetadataClient) -> tuple[int, str, bytes]:
        headers = {name: request.headers[name] for name in ("content-type", "accept") if name in request.headers}
        headers.update({
            "X-Forwarded-For": source,
            "X-Instance-ID": client.instance_id,
            "X-Tenant-ID": client.project_id,
            "X-Instance-ID-Signature": sign_instance_id(self._secret, client.instance_id),
        })
        upstream = self._client
        if upstream is None:  # stop_all() raced this request
            return 500, TEXT, b"Metadata proxy stopping."
        try:
            reply = await upstream.request(request.method, self.metadata_url + request.target,
                                               headers=headers, content=request.body or None)
        except httpx.HTTPError as exc:
            log.warning("metadata API at %s unreachable: %s", self.metadata_url, type(exc).__name__)
            return 500, TEXT, b"Metadata service unreachable."
        return reply.status_code, reply.headers.get("content-type", TEXT), reply.content


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Request:
    """One HTTP/1.x request with at most :data:`MAX_BODY` bytes of Content-Length body (no chunked bodies)."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    except asyncio.LimitOverrunError as exc:
        raise _Reject(431, "Request header too large.") from exc
    except asyncio.IncompleteReadError as exc:
        if len(exc.partial) >= MAX_HEAD:
            raise _Reject(431, "Request header too large.") from exc
        raise
    method, target, headers = _parse_head(raw.decode("latin-1"))
    if "transfer-encoding" in headers:
        raise _Reject(411, "Length required.")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise _Reject(400, "Bad Content-Length.")
    if int(length) > MAX_BODY:
        raise _Reject(413, "Request body too large.")
    if int(length) and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await asyncio.wait_for(reader.readexactly(int(length)), READ_TIMEOUT) if int(length) else b""
    return _Request(method, target, headers, body)


def _parse_head(text: str) -> tuple[str, str, dict[str, str]]:
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Reject(400, "Bad request.")
    method, target = parts[0], parts[1]
    if not target.startswith("/") or not target.isascii() or not target.isprintable():
        raise _Reject(400, "Bad request target.")
    if method not in METHODS:
        raise _Reject(405, "Method not allowed.")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _Reject(400, "Bad header.")
        name, value = name.lower(), value.strip()
        if name in headers and name == "content-length" and headers[name] != value:
            raise _Reject(400, "Conflicting Content-Length.")
        headers.setdefault(name, value)
    return method, target, headers


def _response(status: int, content_type: str, body: bytes, *, head: bool = False) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
             "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1", "replace") + (b"" if head else body)


class FakeMetadataProxy:
    """The :class:`MetadataProxy` API without sockets: which routers would be served, for which clients."""

    def __init__(self) -> None:
        self.clients: dict[str, tuple[str, tuple[MetadataClient, ...]]] = {}

    def running(self) -> set[str]:
        return set(self.clients)

    async def start(self, router_id: str, namespace: str, clients: Sequence[MetadataClient]) -> None:
        self.clients[router_id] = (namespace, tuple(clients))

    async def stop(self, router_id: str) -> None:
        self.clients.pop(router_id, None)

    async def stop_all(self) -> None:
        self.clients.clear()
