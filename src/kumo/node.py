"""The composition root: which APIs, workers and agents run on this node.

``kumo up`` and ``kumo serve --role ...`` both build a :class:`Node`. The
roles are the seeds' node types:

=========== =================================================================
controller  every REST API (one HTTP server, services mounted at paths), the
            compute conductor and scheduler
compute     the compute agent(s): one per host, or ``compute.fake_hosts`` simulated ones
network     the network agent's DHCP, router and metadata parts (compute nodes run its bridge part)
storage     volume/object agents (arrive with their issues)
=========== =================================================================

Roles whose agents do not exist yet are accepted and reported as such, so
deployment scripts written today keep working as the agents land.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from kumo.clouds import admin_password, service_password, write_client_files
from kumo.compute.api import create_app as compute_app
from kumo.compute.conductor.manager import CONDUCTOR_METHODS, ConductorManager
from kumo.compute.consoles import ConsoleProxy
from kumo.compute.deps import ComputeDeps
from kumo.compute.flavors import FlavorService
from kumo.compute.fleet import ComputeFleet, image_cache_path
from kumo.compute.image_cache import ImageCache
from kumo.compute.instances import CONDUCTOR_BINARY, SCHEDULER_BINARY
from kumo.compute.keypairs import KeypairService
from kumo.compute.metadata.api import MetadataAPI, load_vendor_data, shared_secret
from kumo.compute.network import NetworkAPI
from kumo.compute.rpcapi import (
    CONDUCTOR_TOPIC,
    SCHEDULER_TOPIC,
    ComputeAgentAPI,
    ConductorAPI,
    SchedulerAPI,
)
from kumo.compute.scheduler.manager import SchedulerManager
from kumo.core import errors
from kumo.core.bus import Bus, Consumer, create_bus
from kumo.core.bus.base import Exposed
from kumo.core.clients import ImageClient, NetworkClient, ServiceAuth, ServiceClient
from kumo.core.config import ROLES, Settings
from kumo.core.db import Database
from kumo.core.heartbeat import Heartbeat
from kumo.core.periodic import every
from kumo.core.policy import DEFAULT_POLICY_PATH, Enforcer
from kumo.core.web import PortDispatcher, json_response, root_app
from kumo.identity.api import create_app as identity_app
from kumo.identity.bootstrap import (
    SERVICE_PROJECT,
    SERVICE_USER,
    BootstrapResult,
    CatalogEntry,
    bootstrap_identity,
)
from kumo.identity.service import IdentityService
from kumo.image.api import create_app as image_app
from kumo.image.data import ImageData
from kumo.image.service import ImageService
from kumo.network.api import create_app as network_app
from kumo.network.host import NetworkHost, announce_changes, plug_over_bus
from kumo.network.service import Neutron

log = logging.getLogger("kumo.node")

# (service type, catalog name, mount path) of every API a controller serves.
API_SERVICES = [("identity", "keystone", "/identity"), ("image", "glance", "/image"),
                ("compute", "nova", "/compute"), ("network", "neutron", "/network")]
# What follows the mount path in a catalog URL (the version clients are pointed at), as devstack registers them.
CATALOG_SUFFIX = {"identity": "/v3", "compute": "/v2.1"}
#: Base URL of in-process calls between services (never resolved: the ASGI transport answers).
IN_PROCESS_URL = "http://kumo.internal"
PENDING_ROLES = {"storage": "storage agents"}
#: How often a controller looks for instances stuck in BUILD (bounded by the build timeout itself).
SWEEP_INTERVAL = 30.0


@dataclass
class Node:
    settings: Settings
    roles: list[str]
    db: Database | None = None
    bus: Bus | None = None
    identity: IdentityService | None = None
    images: ImageService | None = None
    image_data: ImageData | None = None
    flavors: FlavorService | None = None
    keypairs: KeypairService | None = None
    compute_deps: ComputeDeps | None = None
    neutron: Neutron | None = None
    image_client: ImageClient | None = None
    _cache_client: ImageClient | None = None
    bootstrap: BootstrapResult | None = None
    heartbeats: list[Heartbeat] = field(default_factory=list)
    fleet: ComputeFleet | None = None
    workers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    server: uvicorn.Server | None = None
    metadata_api: MetadataAPI | None = None
    console_proxy: ConsoleProxy | None = None
    network_api: NetworkAPI | None = None
    network_host: NetworkHost | None = None
    _service_clients: list[ServiceClient] = field(default_factory=list)
    bound: dict[str, int] = field(default_factory=dict)  # listener name -> port, once serving
    _app: object | None = None

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}; choose from {', '.join(ROLES)}")

    def policy(self) -> Enforcer:
        override = Path(self.settings.policy_file) if self.settings.policy_file else self.settings.state_dir / "policy.yaml"
        return Enforcer.from_files(DEFAULT_POLICY_PATH, override if override.exists() else None)

    def catalog_entries(self) -> list[CatalogEntry]:
        base = self.settings.api.base_url()
        return [CatalogEntry(type=t, name=n, url=f"{base}{path}{CATALOG_SUFFIX.get(t, '')}")
                for t, n, path in API_SERVICES]

    async def start(self, *, bootstrap: bool = True) -> None:
        """Connect to the database and bus, migrate, bootstrap, start workers."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(self.settings.database_url, pool_size=self.settings.database.pool_size,
                           echo=self.settings.database.echo)
        await self.db.upgrade()
        self.bus = create_bus(self.settings.bus.url, call_timeout=self.settings.bus.call_timeout)
        await self.bus.start()
        if "controller" in self.roles:
            self.identity = IdentityService(self.db, self.settings, self.bus)
            await self.identity.start()
            self.images = ImageService(self.db, self.settings)
            self.image_data = ImageData(self.images)
            self.neutron = Neutron.build(self.db, self.settings.network)
            self.flavors = FlavorService(self.db)
            self.keypairs = KeypairService(self.db)
            self.image_client = ImageClient(f"{IN_PROCESS_URL}/image", transport=_LazyASGITransport(self))
            self.network_api = self._network_api(in_process=True)
            self.compute_deps = ComputeDeps(db=self.db, settings=self.settings, bus=self.bus,
                                            images=self.image_client, flavors=self.flavors, keypairs=self.keypairs,
                                            conductor=ConductorAPI(self.bus), agents=ComputeAgentAPI(self.bus),
                                            network=self.network_api)
            if bootstrap:
                await self.run_bootstrap()
            await self._beat("kumo-api", "controller")
            await self._start_compute_workers()
            self.metadata_api = MetadataAPI(
                self.db, shared_secret(self.settings.metadata.shared_secret, self.settings.state_dir),
                default_zone=self.settings.compute.default_availability_zone,
                vendor_data=load_vendor_data(self.settings.metadata.vendor_data_file))
        if "network" in self.roles or "compute" in self.roles:
            secret = shared_secret(self.settings.metadata.shared_secret, self.settings.state_dir)
            self.network_host = await NetworkHost.start(self.settings, self.db, self.bus, self.roles, secret,
                                                        on_floating_change=self._floating_changed)
            await self._beat("kumo-network-agent", "network" if "network" in self.roles else "compute")
        if "compute" in self.roles:
            images = self.image_client or ImageClient(self.settings.compute_image_url(),
                                                      timeout=self.settings.bus.call_timeout)
            if self.image_client is None:
                self.image_client = images
            if self.network_api is None:
                self.network_api = self._network_api(in_process=False)
            self.fleet = ComputeFleet(self.settings, self.db, self.bus, images=images,
                                      image_cache=self._image_cache(), network=self.network_api,
                                      plug_vifs={self.settings.node.host: plug_over_bus(self.bus, 60.0)})
            await self.fleet.start()
            self.console_proxy = ConsoleProxy(self.db, {a.host for a in self.fleet.agents},
                                              self.settings.console.novnc_dir())
        for role in self.roles:
            if role in PENDING_ROLES:
                log.info("role %s: no %s yet in this version of Kumo", role, PENDING_ROLES[role])

    def _network_api(self, *, in_process: bool) -> NetworkAPI:
        """Compute's client of the network API, acting with the ``kumo`` service user where Nova uses its own."""
        if in_process:
            transport = _LazyASGITransport(self)
            network = NetworkClient(f"{IN_PROCESS_URL}/network", transport=transport)
            identity = ServiceClient(f"{IN_PROCESS_URL}/identity", transport=transport)
        else:
            base = self.settings.api.base_url()
            network = NetworkClient(f"{base}/network", timeout=self.settings.bus.call_timeout)
            identity = ServiceClient(f"{base}/identity", timeout=self.settings.bus.call_timeout)
        self._service_clients += [network, identity]
        password = service_password(self.settings.state_dir, self.settings.identity.service_password)
        return NetworkAPI(network, ServiceAuth(identity, SERVICE_USER, password, project=SERVICE_PROJECT))

    async def _floating_changed(self, instance_uuids: set[str]) -> None:
        assert self.bus is not None
        await self.bus.cast(CONDUCTOR_TOPIC, "refresh_network_info", {"instance_uuids": sorted(instance_uuids)})

    def _image_cache(self) -> ImageCache | None:
        """The host's image cache, for drivers that boot from image files (not the fake one).

        It downloads over HTTP even in an all-in-one process: the in-process
        ASGI transport holds a whole response in memory, an image would not fit.
        """
        if self.settings.compute.driver == "fake":
            return None
        self._cache_client = ImageClient(self.settings.compute_image_url(), timeout=self.settings.bus.call_timeout)
        return ImageCache(image_cache_path(self.settings), self._cache_client,
                          max_unused_age=self.settings.compute.image_cache_max_unused)

    async def _start_compute_workers(self) -> None:
        """The conductor and scheduler (Nova's ``nova-conductor``, ``nova-scheduler``) and the build-timeout sweep."""
        assert self.db is not None and self.bus is not None
        options = self.settings.compute
        conductor = ConductorManager(self.db, options, SchedulerAPI(self.bus, timeout=self.settings.bus.call_timeout),
                                     ComputeAgentAPI(self.bus), network=self.network_api)
        scheduler = SchedulerManager(self.db, options, service_down_time=self.settings.node.service_down_time)
        self.workers.append(await self.bus.serve(CONDUCTOR_TOPIC, Exposed(conductor, CONDUCTOR_METHODS)))
        self.workers.append(await self.bus.serve(SCHEDULER_TOPIC, Exposed(scheduler, {"select_destinations"})))
        await self._beat(CONDUCTOR_BINARY, "controller", CONDUCTOR_TOPIC)
        await self._beat(SCHEDULER_BINARY, "controller", SCHEDULER_TOPIC)
        interval = min(SWEEP_INTERVAL, max(0.5, options.build_timeout / 4))
        self.tasks.append(asyncio.create_task(every(interval, conductor.sweep_build_timeouts), name="build-sweep"))

    async def run_bootstrap(self) -> BootstrapResult:
        assert self.identity is not None
        password = admin_password(self.settings.state_dir, self.settings.identity.admin_password)
        self.bootstrap = await bootstrap_identity(
            self.identity, password, self.settings.identity.region, self.catalog_entries(),
            service_password=service_password(self.settings.state_dir, self.settings.identity.service_password))
        auth_url = f"{self.settings.api.base_url()}/identity/v3"
        write_client_files(self.settings.state_dir, auth_url, password, self.settings.identity.region)
        assert self.flavors is not None
        created = await self.flavors.bootstrap_flavors()
        if created:
            log.info("bootstrap: created flavors %s", ", ".join(created))
        if self.settings.image.bootstrap_tiny:
            await self._register_tiny()
        if self.settings.network.bootstrap_networks:
            from kumo.network.bootstrap import bootstrap_networks

            assert self.neutron is not None
            try:
                await bootstrap_networks(self.neutron, self.settings.network, self.bootstrap.admin_project_id)
            except Exception:  # noqa: BLE001 - a cloud without its starter networks still starts
                log.warning("could not create the bootstrap networks", exc_info=True)
        return self.bootstrap

    async def _register_tiny(self) -> None:
        assert self.images is not None and self.image_data is not None and self.bootstrap is not None
        from kumo.image.bootstrap import admin_context, register_tiny

        state = self.settings.state_dir
        cache = Path(self.settings.image.tiny_cache_dir) if self.settings.image.tiny_cache_dir else \
            state / "cache" / "debs"
        ctx = admin_context(self.bootstrap.admin_user_id, self.bootstrap.admin_project_id)
        try:
            await register_tiny(self.images, self.image_data, ctx, state / "tiny", cache,
                                lambda message: log.info("%s", message))
        except Exception:  # noqa: BLE001 - a cloud without its test image still starts
            log.warning("could not register the tiny test image", exc_info=True)

    async def _beat(self, binary: str, role: str, topic: str = "") -> None:
        assert self.db is not None
        hb = Heartbeat(self.db, host=self.settings.node.host, binary=binary, role=role, topic=topic,
                       interval=self.settings.node.heartbeat_interval)
        await hb.start()
        self.heartbeats.append(hb)

    def asgi_app(self):  # type: ignore[no-untyped-def]
        """The root ASGI app with every API this node serves."""
        assert self.identity is not None and self.images is not None and self.image_data is not None
        assert self.compute_deps is not None and self.neutron is not None
        if self._app is not None:
            return self._app
        policy = self.policy()
        identity = self.identity

        async def project_exists(project_id: str) -> bool:
            try:
                await identity.projects.get(project_id)
            except errors.NotFound:
                return False
            return True

        mounts = [("/identity", identity_app(self.identity, policy)),
                  ("/image", image_app(self.images, self.image_data, policy, self.identity.validator)),
                  ("/compute", compute_app(self.compute_deps, policy, self.identity.validator, project_exists)),
                  ("/network", network_app(self.neutron, policy, self.identity.validator,
                                           on_change=announce_changes(self.bus) if self.bus else None))]

        async def root(request):  # type: ignore[no-untyped-def]
            return json_response({"name": "kumo", "services": {t: f"{p}" for t, _, p in API_SERVICES}})

        self._app = root_app(mounts, root=root)
        return self._app

    def listeners(self) -> list[tuple[str, str, int, ASGIApp]]:
        """(name, address, port, app) of everything this node serves over HTTP.

        controller: the REST APIs and the metadata API; compute: the console
        proxy of this node's guests.
        """
        found: list[tuple[str, str, int, ASGIApp]] = []
        if "controller" in self.roles:
            found.append(("api", self.settings.api.host, self.settings.api.port, self.asgi_app()))
            assert self.metadata_api is not None
            found.append(("metadata", self.settings.metadata.listen, self.settings.metadata.port,
                          self.metadata_api.app()))
        if self.console_proxy is not None:
            console = self.settings.console
            found.append(("console proxy", console.proxy_host, console.proxy_port, self.console_proxy.app()))
        return found

    async def serve(self) -> None:
        """Serve every listener of this node in one HTTP server until stopped (or just keep agents running)."""
        listeners = self.listeners()
        if not listeners:
            await asyncio.Event().wait()
            return
        sockets, apps = [], {}
        try:
            for name, host, port, app in listeners:
                sock = _listen_socket(name, host, port)
                sockets.append(sock)
                apps[sock.getsockname()[1]] = app
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self.bound = {name: sock.getsockname()[1] for (name, *_), sock in zip(listeners, sockets, strict=True)}
        config = uvicorn.Config(PortDispatcher(apps), log_config=None, access_log=self.settings.api.access_log,
                                lifespan="off", server_header=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        await self.server.serve(sockets=sockets)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.fleet is not None:
            await self.fleet.stop()
        if self.network_host is not None:
            await self.network_host.stop()
        for service_client in self._service_clients:
            await service_client.close()
        for worker in self.workers:
            await worker.stop()
        for hb in self.heartbeats:
            await hb.stop()
        for client in (self.image_client, self._cache_client):
            if client is not None:
                await client.close()
        if self.image_data is not None:
            await self.image_data.stop()
        if self.identity is not None:
            await self.identity.stop()
        if self.bus is not None:
            await self.bus.close()
        if self.db is not None:
            await self.db.dispose()


class _LazyASGITransport(httpx.AsyncBaseTransport):
    """Calls the node's own root app in-process; built on first use, when every API is mounted."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._inner: httpx.ASGITransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = httpx.ASGITransport(app=self._node.asgi_app())
        return await self._inner.handle_async_request(request)


def _listen_socket(name: str, host: str, port: int) -> socket.socket:
    """A bound TCP socket for one listener; a taken port says which listener and how to move it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"the {name} cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(False)
    return sock
