"""Configuration: one TOML file plus ``KUMO_*`` environment overrides.

Defaults describe the all-in-one node (SQLite in the state directory, the
in-process bus, every role), so ``kumo up`` needs no file at all. A
multi-node deployment sets ``database.url`` and ``bus.url`` to MariaDB and
RabbitMQ and picks roles per host.

Environment variables use ``__`` between section and key:
``KUMO_DATABASE__URL=mysql+asyncmy://...``, ``KUMO_API__PORT=9000``;
top-level keys are plain: ``KUMO_STATE_DIR=/srv/kumo``.
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ROLES = ("controller", "compute", "network", "storage")


def default_state_dir() -> Path:
    """``/var/lib/kumo`` for root (a cloud is a system service), else XDG state."""
    if os.geteuid() == 0:
        return Path("/var/lib/kumo")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kumo"


class NodeOptions(BaseModel):
    host: str = Field(default_factory=socket.gethostname, description="Name this node reports for its services.")
    roles: list[str] = Field(default_factory=lambda: list(ROLES), description="Roles run by `kumo serve` without --role.")
    heartbeat_interval: float = Field(10.0, description="Seconds between service heartbeats.")
    service_down_time: float = Field(60.0, description="A service with no heartbeat for this long is down.")


class DatabaseOptions(BaseModel):
    url: str = Field("", description="SQLAlchemy async URL; empty = SQLite file in the state directory.")
    pool_size: int = Field(10, description="Connections kept per process (server databases only).")
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class BusOptions(BaseModel):
    url: str = Field("memory://", description="memory:// (in-process) or amqp://user:pass@host:5672/vhost")
    call_timeout: float = Field(60.0, description="Default seconds a bus call waits for its reply.")


class ApiOptions(BaseModel):
    host: str = Field("127.0.0.1", description="Address the REST APIs listen on.")
    port: int = Field(8080, description="Port the REST APIs listen on; services are mounted at paths.")
    public_url: str = Field("", description="Base URL put in the catalog; empty = http://host:port")
    max_body_size: int = Field(114688, description="Largest JSON body accepted, in bytes (Keystone's default).")
    access_log: bool = Field(False, description="Log one line per request.")

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class SecurityComplianceOptions(BaseModel):
    """Keystone's ``[security_compliance]`` options; all off by default, as Keystone's."""

    lockout_failure_attempts: int = Field(0, description="Lock a user after this many failed logins (0 = never).")
    lockout_duration: int = Field(1800, description="Seconds a locked user stays locked.")
    unique_last_password_count: int = Field(0, description="Refuse reuse of the last N passwords (0/1 = off).")
    minimum_password_age: int = Field(0, description="Days before a user may change their password again.")
    password_expires_days: int = Field(0, description="Days until a password expires (0 = never).")
    password_regex: str = Field("", description="Passwords must match this regex when set.")
    password_regex_description: str = Field("", description="Told to users whose password fails the regex.")
    change_password_upon_first_use: bool = Field(False, description="Require a password change after admin reset.")


class IdentityOptions(BaseModel):
    token_expiration: int = Field(3600, description="Token lifetime in seconds.")
    max_active_keys: int = Field(3, description="Fernet keys kept (staged + primary + secondaries).")
    cache_ttl: float = Field(300.0, description="Seconds a validated token stays in the validation cache.")
    password_hash_time_cost: int = Field(2, description="argon2id time cost.")
    password_hash_memory_kib: int = Field(19456, description="argon2id memory cost in KiB (OWASP minimum).")
    security_compliance: SecurityComplianceOptions = Field(default_factory=SecurityComplianceOptions)
    region: str = Field("RegionOne", description="Region created at bootstrap.")
    admin_password: str = Field("", description="Bootstrap admin password; empty = generate one.")
    service_password: str = Field("", description="Password of the `kumo` service user (compute acting on the "
                                  "network API); empty = generate one into the state directory.")


class ImageOptions(BaseModel):
    """Glance's storage options; quotas mirror its unified-limit names (in MiB)."""

    store: str = Field("file", description="Image store backend: file (real) or fake (tests).")
    image_size_total: int = Field(-1, description="Per-project image storage quota in MiB (-1 = unlimited).")
    image_size_cap: int = Field(1099511627776, description="Largest single image in bytes (Glance's default 1 TiB).")
    image_member_quota: int = Field(128, description="Members per image (-1 = unlimited).")
    image_tag_quota: int = Field(128, description="Tags per image (-1 = unlimited).")
    image_property_quota: int = Field(128, description="Custom properties per image (-1 = unlimited).")
    bootstrap_tiny: bool = Field(True, description="Build and register the `tiny` test image at first start.")
    tiny_cache_dir: str = Field("", description="Where downloaded .deb files are kept; empty = state_dir/cache/debs.")


class ComputeOptions(BaseModel):
    """Nova's compute, scheduler and conductor options that Kumo keeps (same names where Nova has them)."""

    driver: str = Field("qemu", description="Virt driver of this node's compute agent: qemu (real guests) or fake "
                                            "(tests and scale simulation).")
    fake_hosts: int = Field(1, description="With the fake driver: how many simulated hosts this process runs.")
    fake_spawn_seconds: float = Field(0.0, description="With the fake driver: how long a spawn takes.")
    fake_vcpus: int = Field(64, description="With the fake driver: vCPUs each simulated host reports.")
    fake_memory_mb: int = Field(262144, description="With the fake driver: RAM each simulated host reports (MiB).")
    fake_local_gb: int = Field(4000, description="With the fake driver: disk each simulated host reports (GiB).")
    default_availability_zone: str = Field("nova", description="Zone of hosts that are in no aggregate (Nova's).")
    cpu_allocation_ratio: float = Field(4.0, description="vCPU overcommit (Nova's initial_cpu_allocation_ratio).")
    ram_allocation_ratio: float = Field(1.0, description="RAM overcommit (Nova's initial_ram_allocation_ratio).")
    disk_allocation_ratio: float = Field(1.0, description="Disk overcommit (Nova's initial_disk_allocation_ratio).")
    reserved_host_memory_mb: int = Field(512, description="RAM kept for the host itself.")
    max_attempts: int = Field(3, description="Hosts tried for one build before ERROR (Nova's scheduler.max_attempts).")
    build_timeout: float = Field(600.0, description="Seconds an instance may stay in BUILD before it is set to ERROR.")
    resource_interval: float = Field(30.0, description="Seconds between an agent's inventory reports.")
    sync_power_state_interval: float = Field(60.0, description="Seconds between power-state syncs (-1 = never).")
    shutdown_timeout: float = Field(60.0, description="Seconds a guest gets to shut down cleanly on stop.")
    image_url: str = Field("", description="Image API root compute agents use (empty = this node's API /image).")
    instances_path: str = Field("", description="Where guests' disks and definitions live (empty = state_dir/instances).")
    run_dir: str = Field("", description="Guests' sockets and pid files (empty = /run/kumo as root, else under /tmp).")
    image_cache_path: str = Field("", description="The host's image cache (empty = state_dir/image-cache).")
    image_cache_max_unused: float = Field(86400.0, description="Seconds an image no guest uses stays cached "
                                                               "(Nova's remove_unused_original_minimum_age_seconds).")
    image_cache_interval: float = Field(2400.0, description="Seconds between image cache clean-ups (-1 = never).")
    qemu_accel: str = Field("auto", description="auto (KVM where it really works, else TCG), kvm or tcg.")
    qemu_binary: str = Field("qemu-system-x86_64", description="The QEMU system emulator to run guests with.")
    qemu_start_timeout: float = Field(30.0, description="Seconds QEMU gets to open its monitor after starting.")
    vnc_enabled: bool = Field(True, description="Give guests a VNC console (on a Unix socket, for the console proxy).")
    force_config_drive: bool = Field(False, description="Attach a config drive to every guest (Nova's option).")


class NetworkOptions(BaseModel):
    """Neutron's ML2 and quota options that Kumo keeps (same names where Neutron has them)."""

    tenant_network_type: str = Field("vxlan", description="Type of networks projects create (vxlan or local).")
    vni_ranges: str = Field("1:65535", description="VXLAN ids projects' networks get (ML2's vni_ranges).")
    flat_networks: list[str] = Field(default_factory=lambda: ["public"],
                                     description="Physical networks flat provider networks may use.")
    global_physnet_mtu: int = Field(1500, description="MTU of the underlay; VXLAN networks get 50 bytes less.")
    dns_domain: str = Field("openstacklocal", description="Domain of the DNS names ports get (Neutron's).")
    quota_network: int = Field(100, description="Default networks per project (-1 = unlimited).")
    quota_subnet: int = Field(100, description="Default subnets per project.")
    quota_port: int = Field(500, description="Default ports per project.")
    quota_router: int = Field(10, description="Default routers per project.")
    quota_floatingip: int = Field(50, description="Default floating IPs per project.")
    quota_security_group: int = Field(10, description="Default security groups per project.")
    quota_security_group_rule: int = Field(100, description="Default security group rules per project.")
    dataplane: str = Field("linuxbridge", description="Network agent drivers: linuxbridge (bridges, namespaces, "
                           "dnsmasq, nftables; needs root) or fake (nothing touches the kernel: tests, simulation).")
    local_ip: str = Field("", description="This host's tunnel address (VXLAN underlay); empty = single-host VXLAN.")
    external_gateway_on_host: bool = Field(True, description="Put external flat networks' gateway addresses on "
                                           "the bridge this node makes for them (floating IPs reachable from here).")
    resync_interval: float = Field(30.0, description="Seconds between the agent's full re-syncs (changes are "
                                   "applied at once; this heals anything missed).")
    agent_down_time: float = Field(75.0, description="An agent without a report for this long is down (Neutron's).")
    dhcp_log_dir: str = Field("", description="Where each network's dnsmasq logs every DHCP exchange and DNS query "
                              "(<dir>/<network>/dhcp_dns_log, Neutron's dnsmasq_base_log_dir); empty = no log. "
                              "For debugging: the files are not rotated.")
    metadata_url: str = Field("", description="Where metadata proxies forward (empty = this node's metadata API).")
    bootstrap_networks: bool = Field(True, description="`kumo up`: create `public` (external, flat, on br-public) "
                                     "and the admin project's `private` network, subnet and router.")
    public_cidr: str = Field("172.24.4.0/24", description="The `public` network's subnet (devstack's default).")
    private_cidr: str = Field("10.0.0.0/26", description="The admin project's `private` subnet (devstack's).")


class ConsoleOptions(BaseModel):
    """Remote consoles (Nova's ``[vnc]``, ``[serial_console]``, ``[consoleauth]``), proxied on each compute node."""

    proxy_host: str = Field("127.0.0.1", description="Address the console proxy of a compute node listens on.")
    proxy_port: int = Field(6080, description="Port of the console proxy (noVNC pages and websockets).")
    novnc_base_url: str = Field("", description="What VNC console URLs start with (empty = "
                                                "http://proxy_host:proxy_port/vnc_lite.html).")
    serial_base_url: str = Field("", description="What serial console URLs start with (empty = "
                                                 "ws://proxy_host:proxy_port/).")
    token_ttl: int = Field(600, description="Seconds a console token stays valid (Nova's consoleauth.token_ttl).")
    novnc_web: str = Field("", description="Directory of the noVNC client the proxy serves (empty = "
                                           "/usr/share/novnc or /usr/local/share/kumo/novnc, whichever exists).")

    def vnc_url(self) -> str:
        return self.novnc_base_url or f"http://{self.proxy_host}:{self.proxy_port}/vnc_lite.html"

    def novnc_dir(self) -> str:
        if self.novnc_web:
            return self.novnc_web
        for candidate in ("/usr/share/novnc", "/usr/local/share/kumo/novnc"):
            if Path(candidate, "vnc_lite.html").is_file():
                return candidate
        return ""

    def serial_url(self) -> str:
        return self.serial_base_url or f"ws://{self.proxy_host}:{self.proxy_port}/"


class MetadataOptions(BaseModel):
    """The metadata API guests read (Nova's ``metadata_listen``/``[neutron]metadata_proxy_shared_secret``)."""

    listen: str = Field("127.0.0.1", description="Address the metadata API listens on.")
    port: int = Field(8775, description="Port of the metadata API (Nova's metadata_listen_port).")
    shared_secret: str = Field("", description="Secret the network layer signs instance ids with; empty = one "
                                               "generated into state_dir/metadata-secret.")
    vendor_data_file: str = Field("", description="A JSON file served as vendor_data.json (empty = {}).")


class LoggingOptions(BaseModel):
    level: str = Field("INFO", description="Root log level.")


class Settings(BaseSettings):
    """The effective configuration of one Kumo process."""

    model_config = SettingsConfigDict(env_prefix="KUMO_", env_nested_delimiter="__", extra="forbid")

    state_dir: Path = Field(default_factory=default_state_dir, description="Where the node keeps its data.")
    policy_file: str = Field("", description="Operator policy overrides (YAML); empty = state_dir/policy.yaml if present.")
    node: NodeOptions = Field(default_factory=NodeOptions)
    database: DatabaseOptions = Field(default_factory=DatabaseOptions)
    bus: BusOptions = Field(default_factory=BusOptions)
    api: ApiOptions = Field(default_factory=ApiOptions)
    identity: IdentityOptions = Field(default_factory=IdentityOptions)
    image: ImageOptions = Field(default_factory=ImageOptions)
    compute: ComputeOptions = Field(default_factory=ComputeOptions)
    network: NetworkOptions = Field(default_factory=NetworkOptions)
    console: ConsoleOptions = Field(default_factory=ConsoleOptions)
    metadata: MetadataOptions = Field(default_factory=MetadataOptions)
    logging: LoggingOptions = Field(default_factory=LoggingOptions)

    _toml_data: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments (the TOML file) < environment.
        return (env_settings, init_settings)

    def compute_image_url(self) -> str:
        """Where a compute agent reaches the image service."""
        return self.compute.image_url or f"{self.api.base_url()}/image"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.state_dir / 'kumo.db'}"


def config_file_path(explicit: str | None = None) -> Path | None:
    """The TOML file to read: --config, then $KUMO_CONFIG, then /etc/kumo/kumo.toml."""
    for candidate in (explicit, os.environ.get("KUMO_CONFIG"), "/etc/kumo/kumo.toml"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
        if candidate and candidate is explicit:
            raise FileNotFoundError(f"config file not found: {candidate}")
    return None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the TOML file (if any), then env, then ``overrides``."""
    data: dict[str, Any] = {}
    file = config_file_path(str(path) if path else None)
    if file is not None:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    settings = Settings(**data)
    for dotted, value in overrides.items():
        _set_dotted(settings, dotted, value)
    return settings


def _set_dotted(settings: Settings, dotted: str, value: Any) -> None:
    target: Any = settings
    *parents, leaf = dotted.split("__")
    for name in parents:
        target = getattr(target, name)
    setattr(target, leaf, value)


SECRET_KEYS = {"admin_password", "password", "secret", "shared_secret"}


def mask_url(url: str) -> str:
    """Hide the password in a URL (``amqp://guest:***@host``)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective config as a dict, with passwords and secrets masked."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in SECRET_KEYS and value:
                    out[key] = "***"
                elif key == "url" and isinstance(value, str):
                    out[key] = mask_url(value)
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, Path):
            return str(node)
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    dumped = walk(settings.model_dump())
    dumped["database"]["url"] = mask_url(settings.database_url)
    return dumped
