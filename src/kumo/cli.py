"""The ``kumo`` command.

``kumo up``                         all-in-one cloud in the foreground (Ctrl-C stops it)
``kumo serve --role controller,...`` the chosen roles of a multi-node deployment
``kumo status``                     every service and host, up or down
``kumo config show``                effective configuration, secrets masked
``kumo db upgrade``                 run database migrations
``kumo identity rotate-keys``       rotate the Fernet token keys
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx

from kumo.core.config import ROLES, Settings, load_settings, masked_dump


def _say(message: str) -> None:
    print(f"kumo: {message}", flush=True)


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per status probe is noise


async def _run_node(settings: Settings, roles: list[str], banner: bool) -> int:
    from kumo.node import Node

    node = Node(settings, roles)
    started = time.monotonic()
    _say(f"starting roles {', '.join(roles)} on host {settings.node.host}")
    _say(f"state directory {settings.state_dir}; database {masked_dump(settings)['database']['url']}; "
         f"bus {masked_dump(settings)['bus']['url']}")
    try:
        _say("migrating the database and starting services ...")
        await node.start()
        serve = asyncio.create_task(node.serve(), name="kumo-serve")
        while node.server is not None and not node.server.started and not serve.done():
            await asyncio.sleep(0.05)
        if serve.done():
            return serve.result() or 0  # type: ignore[func-returns-value]
        if banner:
            _print_banner(settings, time.monotonic() - started)
        await serve
    finally:
        await node.stop()
        _say("stopped")
    return 0


def _openstack_command() -> str:
    """``openstack`` if it is on PATH, else the venv's copy (make up installs it there)."""
    import shutil
    from pathlib import Path

    if shutil.which("openstack"):
        return "openstack"
    beside = Path(sys.executable).parent / "openstack"
    return str(beside) if beside.exists() else "openstack"


def _print_banner(settings: Settings, seconds: float) -> None:
    base = settings.api.base_url()
    clouds = settings.state_dir / "clouds.yaml"
    osc = _openstack_command()
    print(f"""
Kumo is up ({seconds:.1f}s): {base}
  identity  {base}/identity/v3
  image     {base}/image
  compute   {base}/compute/v2.1
  network   {base}/network/v2.0

Use it with the OpenStack client:
  export OS_CLIENT_CONFIG_FILE={clouds}
  export OS_CLOUD=kumo
  {osc} token issue
or: source {settings.state_dir / 'openrc'}

{_compute_line(settings)}{_network_line(settings)}
The admin password is in {settings.state_dir / 'admin-password'}. Ctrl-C stops the cloud; data stays.
""", flush=True)


def _compute_line(settings: Settings) -> str:
    """Say plainly what the compute hosts are, so nobody mistakes simulated guests for VMs."""
    options = settings.compute
    if options.driver == "fake":
        count = max(1, options.fake_hosts)
        return (f"Compute: {count} simulated host(s) with the fake driver (servers go ACTIVE but no VM runs;\n"
                f"  compute.driver = \"qemu\" runs real guests).\n")
    console = settings.console
    return (f"Compute: this host with the {options.driver} driver; consoles via "
            f"http://{console.proxy_host}:{console.proxy_port}/, metadata API on "
            f"{settings.metadata.listen}:{settings.metadata.port}.\n"
            f"  Guests keep running when Kumo stops and are adopted at the next start.\n")


def _network_line(settings: Settings) -> str:
    """Where guests' networks live, and how to reach them from this host."""
    import os

    options = settings.network
    if options.dataplane == "fake" or os.geteuid() != 0:
        return ("Network: no dataplane (fake, or not root): networks, ports and addresses exist in the API only.\n")
    line = "Network: Linux bridges, dnsmasq and nftables on this host"
    if options.bootstrap_networks:
        line += (f"; `private` ({options.private_cidr}) is routed by router1 to `public` ({options.public_cidr},\n"
                 f"  on br-public): `openstack server create --network private ...`, then `floating ip create public`\n"
                 f"  and `server add floating ip` to reach a guest from this host.")
    return line + "\n"


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run the node on uvloop when it is installed (faster event loop), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _apply_fake_hosts(args: argparse.Namespace, settings: Settings) -> None:
    if getattr(args, "fake_hosts", None):
        settings.compute.driver = "fake"
        settings.compute.fake_hosts = args.fake_hosts


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    _apply_fake_hosts(args, settings)
    return _run_loop(_run_node(settings, list(ROLES), banner=True))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    roles = [r.strip() for r in (args.role or ",".join(settings.node.roles)).split(",") if r.strip()]
    _apply_fake_hosts(args, settings)
    return _run_loop(_run_node(settings, roles, banner=False))


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from kumo.core.db import Database
    from kumo.core.heartbeat import service_statuses

    async def gather() -> list:  # type: ignore[type-arg]
        db = Database(settings.database_url)
        try:
            return await service_statuses(db, settings.node.service_down_time)
        finally:
            await db.dispose()

    try:
        statuses = asyncio.run(gather())
    except Exception as exc:  # noqa: BLE001 - a status tool reports, it does not crash
        print(f"database unreachable ({type(exc).__name__}): {exc}")
        return 2
    base = settings.api.base_url()
    try:
        reply = httpx.get(f"{base}/identity/v3", timeout=3)
        api_state = f"up (HTTP {reply.status_code})"
    except httpx.HTTPError as exc:
        api_state = f"down ({type(exc).__name__})"
    if args.format == "json":
        print(json.dumps({"api": {"url": base, "state": api_state},
                          "services": [{"host": s.host, "binary": s.binary, "role": s.role, "up": s.up,
                                        "disabled": s.disabled, "last_seen": s.last_seen.isoformat()}
                                       for s in statuses]}, indent=2))
    else:
        print(f"API {base}: {api_state}")
        if not statuses:
            print("no services have reported yet")
        hw = max([24, *(len(s.host) for s in statuses)])
        sw = max([16, *(len(s.binary) for s in statuses)])
        print(f"{'HOST':<{hw}} {'SERVICE':<{sw}} {'ROLE':<11} {'STATE':<6} LAST HEARTBEAT")
        for s in statuses:
            state = "up" if s.up else "DOWN"
            if s.disabled:
                state += " (disabled)"
            print(f"{s.host:<{hw}} {s.binary:<{sw}} {s.role:<11} {state:<6} {s.last_seen:%Y-%m-%d %H:%M:%S}Z")
        computes = [s for s in statuses if s.binary == "nova-compute"]
        if computes:
            print(f"compute hosts: {sum(1 for s in computes if s.up)} up of {len(computes)}")
    return 0 if statuses and all(s.up for s in statuses) else 1


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    import tomli_w

    data = masked_dump(settings)
    print(tomli_w.dumps(_drop_none(data)), end="")
    return 0


def _drop_none(node: object) -> object:
    """TOML has no null: unset options are left out."""
    if isinstance(node, dict):
        return {k: _drop_none(v) for k, v in node.items() if v is not None}
    return node


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from kumo.core.db import upgrade_sync

    upgrade_sync(settings.database_url)
    _say("database is at the latest schema")
    return 0


def cmd_rotate_keys(args: argparse.Namespace, settings: Settings) -> int:
    from kumo.identity.tokens import KeyRepository

    repo = KeyRepository(settings.state_dir / "fernet-keys", settings.identity.max_active_keys)
    primary = repo.rotate()
    _say(f"rotated Fernet keys: key {primary} is now primary; running API processes pick it up within seconds")
    _bump_identity_revision(settings)
    return 0


def _bump_identity_revision(settings: Settings) -> None:
    """Make running API processes reload keys (they poll the identity revision)."""
    from kumo.core.db import Database
    from kumo.identity.store import IdentityStore

    async def bump() -> None:
        db = Database(settings.database_url)
        try:
            store = IdentityStore(db, settings, hasher=None)  # type: ignore[arg-type]
            async with db.session() as s:
                await store.bump_revision(s)
        finally:
            await db.dispose()

    with contextlib.suppress(Exception):
        asyncio.run(bump())


def cmd_image_build_tiny(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from kumo.image.tiny import TinyBuildError, build_tiny

    output = Path(args.output) if args.output else settings.state_dir / "tiny"
    cache = Path(args.cache) if args.cache else settings.state_dir / "cache" / "debs"
    try:
        image = build_tiny(output, cache, progress=_say)
    except TinyBuildError as exc:
        print(f"kumo: cannot build the tiny image: {exc}", file=sys.stderr)
        return 1
    _say(f"tiny image ready (kernel {image.version}): {image.kernel} {image.ramdisk}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kumo", description="Kumo: an OpenStack-compatible cloud.")
    parser.add_argument("--config", help="TOML config file (default: $KUMO_CONFIG or /etc/kumo/kumo.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the all-in-one cloud in the foreground")
    up.add_argument("--fake-hosts", type=int, metavar="N", help="simulate N compute hosts with the fake driver")
    up.set_defaults(func=cmd_up)
    serve = sub.add_parser("serve", help="run the given roles of this node")
    serve.add_argument("--role", help=f"comma-separated roles: {', '.join(ROLES)}")
    serve.add_argument("--fake-hosts", type=int, metavar="N",
                       help="simulate N compute hosts with the fake driver (scale tests)")
    serve.set_defaults(func=cmd_serve)
    status = sub.add_parser("status", help="show every service and host, up or down")
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.set_defaults(func=cmd_status)
    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_cmd", required=True)
    config.add_parser("show", help="print the effective config (secrets masked)").set_defaults(func=cmd_config_show)
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="run migrations").set_defaults(func=cmd_db_upgrade)
    ident = sub.add_parser("identity", help="identity service tools").add_subparsers(dest="id_cmd", required=True)
    ident.add_parser("rotate-keys", help="rotate Fernet token keys").set_defaults(func=cmd_rotate_keys)
    image = sub.add_parser("image", help="image tools").add_subparsers(dest="image_cmd", required=True)
    tiny = image.add_parser("build-tiny", help="build the small test image (kernel + initramfs) from Debian packages")
    tiny.add_argument("--output", help="where tiny-vmlinuz and tiny-initrd.img go (default: <state_dir>/tiny)")
    tiny.add_argument("--cache", help="where downloaded .deb files are kept (default: <state_dir>/cache/debs)")
    tiny.set_defaults(func=cmd_image_build_tiny)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"kumo: bad configuration: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
