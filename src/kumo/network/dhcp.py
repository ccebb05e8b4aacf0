"""The DHCP (and DNS) server of a network: one dnsmasq per network inside ``qdhcp-<network id>``.

Like Neutron's DHCP agent with its ``Dnsmasq`` driver: the configuration of a
network lives in ``<state_dir>/<network id>/`` (``host``, ``opts``,
``addn_hosts``, ``leases``, ``pid``) and one daemonised dnsmasq, started
with ``ip netns exec``, serves it. Only static leases are given (a MAC not
in ``host`` gets nothing), so dnsmasq never picks an address itself: the
network service's IPAM already did.

The rendering is pure (:func:`render`), so the unit tests check the exact
files and command line without root. :class:`DnsmasqDhcp` then only
decides between three cheap outcomes of :meth:`DnsmasqDhcp.ensure`:

* nothing, when the running dnsmasq already loaded exactly this config (a
  ``loaded`` stamp records the pid and a digest of the files it was last
  given, so an agent restarting, or ensuring twice, sends no signal);
* ``SIGHUP``, when only the files changed (ports added or removed): dnsmasq
  rereads ``--dhcp-hostsfile``, ``--dhcp-optsfile`` and ``--addn-hosts``
  without dropping its leases or its sockets;
* a restart, when the command line changed (subnets, interface, domain,
  MTU) or the process is not running in the plan's namespace any more.

A pid is only trusted when ``/proc/<pid>/cmdline`` names this network's
config directory, so a recycled pid is never signalled. dnsmasq drops its
privileges (to ``nobody`` unless ``user`` says otherwise) after reading its
config, so the files it rereads on ``SIGHUP`` must stay readable by that
user: the config directories are 0755 and the files 0644, and the state
directory must be reachable by others (checked at construction).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kumo.network.dataplane.base import DhcpHost, DhcpPlan, DhcpSubnet

#: Lease time of every range (Neutron's ``dhcp_lease_duration`` default).
LEASE_SECONDS = 86400
#: dnsmasq refuses leases beyond ``--dhcp-lease-max`` (default 1000), so it is sized from the subnets.
LEASE_MAX_CAP = 2**24
#: Seconds between dnsmasq's unsolicited router advertisements (RFC 4861 allows 4..1800).
RA_INTERVAL = 60

HOSTS_FILE = "host"
OPTS_FILE = "opts"
ADDN_HOSTS_FILE = "addn_hosts"
LEASES_FILE = "leases"
PID_FILE = "pid"
#: ``<pid> <digest>``: what the running dnsmasq last (re)loaded; not read by dnsmasq.
LOADED_FILE = "loaded"

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DhcpError(RuntimeError):
    """dnsmasq could not be started (its stderr is in the message)."""


# --------------------------------------------------------------------------- rendering (pure)


@dataclass(frozen=True, slots=True)
class DhcpConfig:
    """Everything one dnsmasq is given: its arguments (without the binary) and the files it rereads on SIGHUP."""

    args: tuple[str, ...]
    hosts: str
    opts: str
    addn_hosts: str

    @property
    def digest(self) -> str:
        """Identifies the reloadable files, so an unchanged config is never signalled twice."""
        blob = "\0".join((self.hosts, self.opts, self.addn_hosts)).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


def render(plan: DhcpPlan, conf_dir: Path, *, user: str | None = None, log_file: Path | None = None) -> DhcpConfig:
    """The whole configuration of ``plan`` with its files under ``conf_dir``."""
    return DhcpConfig(args=tuple(dnsmasq_args(plan, conf_dir, user=user, log_file=log_file)),
                      hosts=render_hosts(plan),
                      opts=render_opts(plan), addn_hosts=render_addn_hosts(plan))


def subnet_tag(subnet_id: str) -> str:
    """The dnsmasq tag a subnet's range sets and its options match (Neutron's ``subnet-<id>``)."""
    return f"subnet-{subnet_id}"


def ipv6_mode(subnet: DhcpSubnet) -> str | None:
    """How addresses are assigned: the address mode, else the RA mode (Neutron allows ``ra_mode`` alone)."""
    return subnet.ipv6_address_mode or subnet.ipv6_ra_mode


def range_mode(subnet: DhcpSubnet) -> str | None:
    """The dnsmasq ``--dhcp-range`` mode of a subnet, or None when dnsmasq has nothing to do for it.

    IPv4 and DHCPv6-stateful subnets hand out static leases (``static``: no
    dynamic pool). Stateless DHCPv6 answers options only (``ra-stateless``:
    RAs with the A and O flags when RAs are on). SLAAC needs dnsmasq only
    when it sends the RAs (``ra-only``: no DHCPv6 at all).
    """
    if subnet.ip_version == 4:
        return "static"
    mode = ipv6_mode(subnet)
    if mode == "dhcpv6-stateful":
        return "static"
    if mode == "dhcpv6-stateless":
        return "ra-stateless"
    if mode == "slaac" and subnet.ipv6_ra_mode:
        return "ra-only"
    return None


def sends_ra(plan: DhcpPlan) -> bool:
    """dnsmasq advertises routes/prefixes when some served IPv6 subnet has an RA mode (no router does it)."""
    return any(s.ip_version == 6 and s.ipv6_ra_mode and range_mode(s) for s in plan.subnets)


def dhcp_range(subnet: DhcpSubnet) -> str | None:
    """``--dhcp-range`` of a subnet: ``set:subnet-<id>,<network>,<mode>,<netmask|prefixlen>,<lease>s``."""
    mode = range_mode(subnet)
    if mode is None:
        return None
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    size = net.netmask if net.version == 4 else net.prefixlen
    return f"set:{subnet_tag(subnet.subnet_id)},{net.network_address},{mode},{size},{LEASE_SECONDS}s"


def lease_max(plan: DhcpPlan) -> int:
    """Room for every address of the static subnets (dnsmasq's default of 1000 would cut big networks off)."""
    total = sum(min(ipaddress.ip_network(s.cidr, strict=False).num_addresses, 2**16)
                for s in plan.subnets if range_mode(s) == "static")
    return max(1, min(total, LEASE_MAX_CAP))


def domain_of(plan: DhcpPlan) -> str:
    return plan.dns_domain.strip(".")


def dnsmasq_args(plan: DhcpPlan, conf_dir: Path, *, user: str | None = None,
                 log_file: Path | None = None) -> list[str]:
    """The command line (without the binary); any change to it means a restart.

    ``--conf-file=/dev/null`` keeps a host's ``/etc/dnsmasq.conf`` out;
    ``--bind-dynamic`` (rather than ``--bind-interfaces``) binds DNS to
    addresses that appear later, e.g. an IPv6 address still tentative (DAD)
    at start; MTU is forced (option 26 even when a client does not ask, as
    Neutron does) and is therefore part of the command line.
    """
    args = [
        "--no-hosts", "--no-resolv", "--conf-file=/dev/null",
        f"--pid-file={conf_dir / PID_FILE}",
        f"--dhcp-hostsfile={conf_dir / HOSTS_FILE}",
        f"--addn-hosts={conf_dir / ADDN_HOSTS_FILE}",
        f"--dhcp-optsfile={conf_dir / OPTS_FILE}",
        f"--dhcp-leasefile={conf_dir / LEASES_FILE}",
        "--bind-dynamic", f"--interface={plan.interface}", "--except-interface=lo",
        f"--domain={domain_of(plan)}",
        "--dhcp-authoritative",
        f"--dhcp-lease-max={lease_max(plan)}",
        f"--dhcp-option-force=option:mtu,{plan.mtu}",
    ]
    args += [f"--dhcp-range={r}" for r in map(dhcp_range, plan.subnets) if r]
    if sends_ra(plan):
        # Router lifetime 0: the DHCP namespace is no router, it only advertises prefixes, MTU and DNS.
        args += ["--enable-ra", f"--ra-param={plan.interface},mtu:{plan.mtu},{RA_INTERVAL},0"]
    if user:
        args.append(f"--user={user}")
    if log_file is not None:  # Neutron's dnsmasq_base_log_dir: every lease exchange and query, for debugging
        args += [f"--log-facility={log_file}", "--log-dhcp", "--log-queries"]
    return args


def subnet_of(plan: DhcpPlan, address: str) -> DhcpSubnet | None:
    """The plan's subnet holding ``address`` (None: dnsmasq serves no range for it)."""
    ip = ipaddress.ip_address(address)
    for subnet in plan.subnets:
        if ip in ipaddress.ip_network(subnet.cidr, strict=False):
            return subnet
    return None


def default_hostname(address: str) -> str:
    """Neutron's name for a port without a DNS name: ``host-10-0-0-5``, ``host-2001-db8--5``."""
    return "host-" + str(ipaddress.ip_address(address)).replace(".", "-").replace(":", "-")


def hostname_of(host: DhcpHost, address: str) -> str:
    """The host's own label when it is a valid DNS label, else :func:`default_hostname`.

    dnsmasq rejects a hosts-file line with an invalid name, and the MAC would
    then get no lease at all, so a bad name degrades to the default one.
    """
    label = host.hostname.split(".")[0].lower()
    return label if _LABEL.match(label) else default_hostname(address)


def _host_addresses(plan: DhcpPlan) -> Iterator[tuple[DhcpHost, str, DhcpSubnet]]:
    """Each (host, address, subnet) whose address lies in one of the plan's subnets, in plan order."""
    for host in plan.hosts:
        for address in host.addresses:
            subnet = subnet_of(plan, address)
            if subnet is not None:
                yield host, address, subnet


def render_hosts(plan: DhcpPlan) -> str:
    """``--dhcp-hostsfile``: ``<mac>,<name>.<domain>,<ip>`` (IPv6 ``[ip]``), one line per leased address.

    Only addresses dnsmasq leases get a line: IPv4 and DHCPv6-stateful (SLAAC
    and stateless addresses are the guest's own doing).
    """
    domain = domain_of(plan)
    lines = []
    for host, address, subnet in _host_addresses(plan):
        if range_mode(subnet) != "static":
            continue
        ip = address if subnet.ip_version == 4 else f"[{ipaddress.ip_address(address)}]"
        lines.append(f"{host.mac_address.lower()},{hostname_of(host, address)}.{domain},{ip}")
    return "".join(f"{line}\n" for line in lines)


def render_addn_hosts(plan: DhcpPlan) -> str:
    """``--addn-hosts``: ``<ip>\\t<name>.<domain> <name>`` for every address of every host, so names resolve."""
    domain = domain_of(plan)
    lines = []
    for host, address, _ in _host_addresses(plan):
        name = hostname_of(host, address)
        lines.append(f"{ipaddress.ip_address(address)}\t{name}.{domain} {name}")
    return "".join(f"{line}\n" for line in lines)


def _own_address(plan: DhcpPlan, subnet: DhcpSubnet) -> str | None:
    """The DHCP port's address in ``subnet`` (where dnsmasq answers DNS)."""
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    for fixed in plan.addresses:
        if ipaddress.ip_address(fixed.address) in net:
            return fixed.address
    return None


def _dns_servers(plan: DhcpPlan, subnet: DhcpSubnet) -> list[str]:
    """The subnet's name servers of its IP version, else the DHCP port itself (dnsmasq answers DNS)."""
    servers = [s for s in subnet.dns_nameservers if ipaddress.ip_address(s).version == subnet.ip_version]
    if servers:
        return servers
    own = _own_address(plan, subnet)
    return [own] if own else []


def classless_routes(subnet: DhcpSubnet) -> list[tuple[str, str]]:
    """Option 121's routes: the host routes plus the default route via the gateway.

    A client given option 121 ignores option 3 (RFC 3442), so the default
    route has to be repeated among the classless routes.
    """
    routes = [(str(ipaddress.ip_network(dest, strict=False)), hop) for dest, hop in subnet.host_routes]
    if routes and subnet.gateway and not any(dest == "0.0.0.0/0" for dest, _ in routes):
        routes.append(("0.0.0.0/0", subnet.gateway))
    return routes


def _v4_opts(plan: DhcpPlan, subnet: DhcpSubnet) -> list[str]:
    tag = f"tag:{subnet_tag(subnet.subnet_id)}"
    lines = []
    if dns := _dns_servers(plan, subnet):
        lines.append(f"{tag},option:dns-server,{','.join(dns)}")
    if routes := classless_routes(subnet):
        flat = ",".join(f"{dest},{hop}" for dest, hop in routes)
        lines += [f"{tag},option:classless-static-route,{flat}", f"{tag},249,{flat}"]
    # An empty router option tells dnsmasq to send none (it would otherwise offer itself as the router).
    lines.append(f"{tag},option:router,{subnet.gateway}" if subnet.gateway else f"{tag},option:router")
    return lines


def _v6_opts(plan: DhcpPlan, subnet: DhcpSubnet) -> list[str]:
    tag = f"tag:{subnet_tag(subnet.subnet_id)}"
    dns = _dns_servers(plan, subnet) or ["::"]  # [::] is dnsmasq's "my own address"
    return [f"{tag},option6:dns-server,{','.join(f'[{ipaddress.ip_address(s)}]' for s in dns)}",
            f"{tag},option6:domain-search,{domain_of(plan)}"]


def render_opts(plan: DhcpPlan) -> str:
    """``--dhcp-optsfile``: per subnet (by tag) router, DNS servers and classless routes (IPv4); DNS (IPv6)."""
    lines: list[str] = []
    for subnet in plan.subnets:
        if range_mode(subnet) is None:
            continue
        lines += _v4_opts(plan, subnet) if subnet.ip_version == 4 else _v6_opts(plan, subnet)
    return "".join(f"{line}\n" for line in lines)


# --------------------------------------------------------------------------- processes


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_atomic(path: Path, text: str) -> bool:
    """Replace ``path`` by ``text`` through a rename, so dnsmasq never rereads half a file; False if unchanged."""
    if _read(path) == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True


def proc_cmdline(pid: int) -> list[str] | None:
    """A process's argv, or None when it is gone (or a zombie, whose cmdline is empty)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.decode(errors="replace").split("\0")[:-1] or None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _same_netns(pid: int, namespace: str) -> bool:
    """Whether ``pid`` runs in the named namespace (not in an older one of the same name the agent replaced)."""
    try:
        running, named = os.stat(f"/proc/{pid}/ns/net"), os.stat(f"/run/netns/{namespace}")
    except OSError:
        return False
    return (running.st_dev, running.st_ino) == (named.st_dev, named.st_ino)


def _check_reachable(state_dir: Path) -> None:
    """dnsmasq rereads its files as an unprivileged user: every existing ancestor must be searchable by others."""
    for path in [state_dir, *state_dir.parents]:
        if path.exists() and not path.stat().st_mode & 0o001:
            raise ValueError(f"{path} is not searchable by others, so dnsmasq (after dropping privileges) "
                             f"could not reread its files in {state_dir}: use another state_dir or user='root'")


class DnsmasqDhcp:
    """The DHCP driver: one dnsmasq per network, each in its ``qdhcp-`` namespace, re-adopted after a restart."""

    def __init__(self, state_dir: Path, dnsmasq: str = "dnsmasq", *, user: str | None = None,
                 stop_timeout: float = 5.0, log_dir: Path | None = None) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.dnsmasq = dnsmasq
        self.user = user
        self.log_dir = Path(log_dir).absolute() if log_dir else None
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if user != "root":
            _check_reachable(self.state_dir)

    def conf_dir(self, network_id: str) -> Path:
        return self.state_dir / network_id

    def _log_file(self, network_id: str) -> Path | None:
        """``<log_dir>/<network>/dhcp_dns_log`` (Neutron's layout), made on first use; None when not logging."""
        if self.log_dir is None:
            return None
        directory = self.log_dir / network_id
        directory.mkdir(parents=True, exist_ok=True)
        return directory / "dhcp_dns_log"

    # ---- public API

    def ensure(self, plan: DhcpPlan) -> None:
        """Make one dnsmasq in ``plan.namespace`` serve ``plan``: start, SIGHUP, restart, or nothing at all."""
        with self._lock:
            conf_dir = self.conf_dir(plan.network_id)
            conf_dir.mkdir(parents=True, exist_ok=True)
            conf_dir.chmod(0o755)
            config = render(plan, conf_dir, user=self.user, log_file=self._log_file(plan.network_id))
            for name, text in ((HOSTS_FILE, config.hosts), (OPTS_FILE, config.opts),
                               (ADDN_HOSTS_FILE, config.addn_hosts)):
                write_atomic(conf_dir / name, text)
            pid = self.pid(plan.network_id)
            if pid is not None and not self._serves(pid, plan, config):
                pid = None
            if pid is None:
                self._stop(plan.network_id)  # the outdated one, and strays whose pid file was lost
                pid = self._start(plan, config)
            elif _read(conf_dir / LOADED_FILE) != f"{pid} {config.digest}":
                os.kill(pid, signal.SIGHUP)
            write_atomic(conf_dir / LOADED_FILE, f"{pid} {config.digest}")

    def remove(self, network_id: str) -> None:
        """Stop the network's dnsmasq and delete its config directory; a network never served is fine."""
        with self._lock:
            self._stop(network_id)
            self._delete(self.conf_dir(network_id))

    def networks(self) -> set[str]:
        """Networks with a live dnsmasq (pid files checked against /proc)."""
        return {d.name for d in self._dirs() if self.pid(d.name) is not None}

    def stop_all(self) -> None:
        """Stop every dnsmasq of this state directory and delete their configs (as :meth:`remove` each)."""
        for conf_dir in self._dirs():
            self.remove(conf_dir.name)

    def pid(self, network_id: str) -> int | None:
        """The pid of the network's dnsmasq, if its pid file names a live process started on this config."""
        text = _read(self.conf_dir(network_id) / PID_FILE)
        if not text or not text.strip().isdigit():
            return None
        pid = int(text)
        return pid if self._is_ours(pid, network_id) else None

    # ---- internals

    def _dirs(self) -> list[Path]:
        return sorted(p for p in self.state_dir.iterdir() if p.is_dir()) if self.state_dir.is_dir() else []

    def _is_ours(self, pid: int, network_id: str) -> bool:
        """A dnsmasq whose argv names this network's pid file (so a recycled pid is never trusted)."""
        argv = proc_cmdline(pid)
        marker = f"--pid-file={self.conf_dir(network_id) / PID_FILE}"
        return bool(argv) and marker in argv and _alive(pid)

    def _serves(self, pid: int, plan: DhcpPlan, config: DhcpConfig) -> bool:
        """The running dnsmasq has this command line and lives in the plan's namespace."""
        argv = proc_cmdline(pid) or []
        return tuple(argv[1:]) == config.args and _same_netns(pid, plan.namespace)

    def _strays(self, network_id: str) -> Iterator[int]:
        """Every live process started on this network's config (the pid file's one, or any it lost track of)."""
        marker = f"--pid-file={self.conf_dir(network_id) / PID_FILE}"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                argv = proc_cmdline(int(entry.name))
                if argv and marker in argv and _alive(int(entry.name)):
                    yield int(entry.name)

    def _start(self, plan: DhcpPlan, config: DhcpConfig) -> int:
        """Start dnsmasq in the namespace; it daemonises, and its parent exits once it is serving."""
        pid_file = self.conf_dir(plan.network_id) / PID_FILE
        pid_file.unlink(missing_ok=True)
        argv = ["ip", "netns", "exec", plan.namespace, self.dnsmasq, *config.args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise DhcpError(f"dnsmasq for network {plan.network_id} failed ({done.returncode}): "
                            f"{done.stderr.strip()}")
        deadline = time.monotonic() + 5
        while (pid := self.pid(plan.network_id)) is None:
            if time.monotonic() > deadline:
                raise DhcpError(f"dnsmasq for network {plan.network_id} started but left no live pid in {pid_file}")
            time.sleep(0.02)
        return pid

    def _stop(self, network_id: str) -> None:
        """SIGTERM every dnsmasq of the network, wait ``stop_timeout``, then SIGKILL what is left."""
        pids = set(self._strays(network_id))
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        _signal_all((p for p in pids if _alive(p)), signal.SIGKILL)

    @staticmethod
    def _delete(conf_dir: Path) -> None:
        if not conf_dir.is_dir():
            return
        for child in conf_dir.iterdir():
            child.unlink(missing_ok=True)
        conf_dir.rmdir()


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- fake


class FakeDhcp:
    """In-memory DHCP driver for agent tests: records plans and what the real driver would have done.

    ``events`` lists ``(action, network_id)`` with action ``start``,
    ``reload`` (SIGHUP: files changed), ``restart`` (command line changed)
    or ``stop``, decided by the same rendering as :class:`DnsmasqDhcp`.
    """

    _DIR = Path("/fake-dhcp")

    def __init__(self) -> None:
        self.plans: dict[str, DhcpPlan] = {}
        self.events: list[tuple[str, str]] = []

    def ensure(self, plan: DhcpPlan) -> None:
        old = self.plans.get(plan.network_id)
        self.plans[plan.network_id] = plan
        if old is None:
            self.events.append(("start", plan.network_id))
            return
        before, after = render(old, self._DIR / old.network_id), render(plan, self._DIR / plan.network_id)
        if before.args != after.args or old.namespace != plan.namespace:
            self.events.append(("restart", plan.network_id))
        elif before.digest != after.digest:
            self.events.append(("reload", plan.network_id))

    def remove(self, network_id: str) -> None:
        if self.plans.pop(network_id, None) is not None:
            self.events.append(("stop", network_id))

    def networks(self) -> set[str]:
        return set(self.plans)

    def stop_all(self) -> None:
        for network_id in sorted(self.plans):
            self.remove(network_id)
