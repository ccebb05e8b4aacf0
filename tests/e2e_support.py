"""Helpers for the end-to-end tests: a real ``kumo up`` process and the real ``openstack`` CLI.

:class:`KumoProcess` starts ``python -m kumo.cli up`` on a free loopback
port with its own state directory (and an empty config file, so no
``/etc/kumo/kumo.toml`` or ``KUMO_*`` variable of the developer leaks in),
waits for the banner and for ``GET /identity/v3`` to answer, and stops it
with SIGINT (Ctrl-C), as a user would.

:meth:`KumoProcess.osc` runs ``.venv/bin/openstack`` with
``OS_CLIENT_CONFIG_FILE``/``OS_CLOUD`` and parses ``-f json`` output;
:meth:`KumoProcess.osc_batch` feeds several commands to one ``openstack``
process (its interactive mode; every command shares one session), which
saves ~1.5 s of client start-up per command.
"""

from __future__ import annotations

import json as jsonlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

OPENSTACK = Path(sys.executable).parent / "openstack"
BANNER = "Kumo is up"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Commands whose output goes through a cliff formatter and so take ``-f json``.
FORMATTED_VERBS = {"list", "show", "create", "issue"}
SAFE_PUNCTUATION = "-_.:/@=,+"


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies, so even a killed pytest leaks no ``kumo up``."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def clean_env() -> dict[str, str]:
    """The test process' environment without any OpenStack or Kumo settings of the developer."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUMO_"))}


def wants_json(args: Sequence[str]) -> bool:
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    return bool(FORMATTED_VERBS.intersection(words[:4]))


class OscError(AssertionError):
    pass


@dataclass
class OscResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (f"openstack {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent calls (each typically one ``openstack`` process) at the same time; re-raise the first error."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


def write_clouds_yaml(path: Path, clouds: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class KumoProcess:
    state_dir: Path
    port: int = field(default_factory=free_port)
    metadata_port: int = field(default_factory=free_port)
    console_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    killed: bool = False
    # Extra KUMO_* settings; the tiny image build and real guests are off unless a test asks for them.
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity/v3"

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "kumo-up.log"

    @property
    def admin_password(self) -> str:
        return (self.state_dir / "admin-password").read_text().strip()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> KumoProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        empty_config = self.state_dir / "e2e-kumo.toml"
        empty_config.write_text("")
        env = clean_env() | {
            "KUMO_CONFIG": str(empty_config),
            "KUMO_STATE_DIR": str(self.state_dir),
            "KUMO_API__HOST": "127.0.0.1",
            "KUMO_API__PORT": str(self.port),
            "KUMO_METADATA__PORT": str(self.metadata_port),
            "KUMO_CONSOLE__PROXY_PORT": str(self.console_port),
            "KUMO_IDENTITY__PASSWORD_HASH_TIME_COST": "1",
            "KUMO_IDENTITY__PASSWORD_HASH_MEMORY_KIB": "1024",
            "KUMO_NODE__HOST": "e2e-host",
            "KUMO_IMAGE__BOOTSTRAP_TINY": "false",
            "KUMO_COMPUTE__DRIVER": "fake",  # real guests only where a test asks (extra_env)
            "KUMO_NETWORK__DATAPLANE": "fake",  # real bridges/namespaces only where a test asks
            "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false",
            "PYTHONUNBUFFERED": "1",
        } | self.extra_env
        # Output goes to a file, not a pipe nobody drains, so the server can never block on it.
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "kumo.cli", "up"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         # Popen runs in the main thread, before any helper threads.
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # noqa: PLW1509
        finally:
            log.close()
        self.killed = False
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kumo up exited early with {self.proc.returncode}:\n{self.log()}")
            if BANNER in self.log():
                try:
                    if httpx.get(self.auth_url, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"kumo up not ready within {timeout:.0f}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Ctrl-C the server; kill it if it does not stop in time. Returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        assert self.proc.poll() is not None, "kumo up is still running"
        return self.proc.returncode

    # -- the openstack CLI -----------------------------------------------------------------

    def osc_env(self, cloud: str, config: Path | None) -> dict[str, str]:
        return clean_env() | {"OS_CLIENT_CONFIG_FILE": str(config or self.clouds_yaml), "OS_CLOUD": cloud,
                              "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}

    def osc(self, *args: str, cloud: str = "kumo", check: bool = True, json: bool = True,
            config: Path | None = None, timeout: float = 60) -> Any:
        """Run ``openstack ARGS``.

        With ``check`` (the default) a non-zero exit fails the test and the
        parsed ``-f json`` output (or the stripped text when the command
        has no formatter or ``json=False``) is returned; with
        ``check=False`` the :class:`OscResult` is returned for the caller
        to inspect the exit code and stderr.
        """
        argv = list(args)
        use_json = json and wants_json(argv)
        if use_json:
            argv += ["-f", "json"]
        done = subprocess.run([str(OPENSTACK), *argv], check=False, env=self.osc_env(cloud, config), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        result = OscResult(argv, done.returncode, done.stdout, done.stderr)
        if not check:
            return result
        if done.returncode != 0:
            raise OscError(str(result))
        if use_json:
            try:
                return jsonlib.loads(done.stdout)
            except ValueError as exc:
                raise OscError(f"not JSON ({exc}):\n{result}") from None
        return done.stdout.strip()

    def osc_batch(self, *commands: Sequence[str], cloud: str = "kumo", config: Path | None = None,
                  timeout: float = 90) -> list[Any]:
        """Run several commands in one ``openstack`` process (its interactive shell, fed on stdin).

        Every command must succeed: the interactive shell always exits 1
        at end of input, so success means "nothing on stderr" — a shell
        escape after each command writes a marker to both streams, which
        also tells which output belongs to which command. Returns one
        entry per command: parsed JSON for formatted commands, else the
        stripped text it printed.
        """
        marker = f"@@kumo-e2e-{uuid.uuid4().hex}@@"
        lines, formatted = [], []
        for cmd in commands:
            argv = list(cmd)
            use_json = wants_json(argv)
            if use_json:
                argv += ["-f", "json"]
            formatted.append(use_json)
            for a in argv:
                # cliff's interactive mode re-joins words with spaces (so quoting is lost), and
                # cmd2 treats | > ; & as shell syntax: keep batch arguments to plain words.
                assert a and all(c.isalnum() or c in SAFE_PUNCTUATION for c in a), f"unsafe in a batch: {a!r}"
            lines.append(" ".join(argv))
            lines.append(f"!{self._marker_script()} {marker}")
        script = "\n".join(lines) + "\n"
        done = subprocess.run([str(OPENSTACK)], check=False, env=self.osc_env(cloud, config), input=script,
                              capture_output=True, text=True, timeout=timeout)
        result = OscResult(["<batch>", *lines[::2]], done.returncode, done.stdout, done.stderr)
        chunks = done.stdout.split(marker + "\n")
        errors = done.stderr.split(marker + "\n")
        if len(chunks) != len(commands) + 1 or len(errors) != len(commands) + 1:
            raise OscError(f"batch did not run to the end:\n{result}")
        failed = [f"{lines[2 * n]}: {err.strip()}" for n, err in enumerate(errors[:-1]) if err.strip()]
        if failed:
            raise OscError("failed in a batch:\n" + "\n".join(failed) + f"\n{result}")
        out: list[Any] = []
        for chunk, use_json in zip(chunks, formatted, strict=False):
            if use_json:
                try:
                    out.append(jsonlib.loads(chunk))
                except ValueError as exc:
                    raise OscError(f"not JSON ({exc}): {chunk!r}\n{result}") from None
            else:
                out.append(chunk.strip())
        return out

    def _marker_script(self) -> Path:
        path = self.state_dir.parent / "e2e-mark.sh"
        if not path.exists():
            path.write_text('#!/bin/sh\necho "$1"\necho "$1" >&2\n')
            path.chmod(0o755)
        assert all(c.isalnum() or c in SAFE_PUNCTUATION for c in str(path)), path
        return path


def kill_guests(run_dir: Path) -> list[str]:
    """SIGKILL every QEMU a cloud left under ``run_dir`` (a failed test must never leak a guest); their uuids."""
    from kumo.compute.virt.qemu.process import is_guest_process

    left = [entry.name for entry in run_dir.iterdir()] if run_dir.exists() else []
    for name in left:
        pid_file = run_dir / name / "qemu.pid"
        if pid_file.exists() and is_guest_process(int(pid_file.read_text()), name):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    return left


def scrub_dataplane(state_dir: Path) -> None:
    """After a failed dataplane test: stop the dnsmasq of ``state_dir``'s cloud and remove every Kumo-named link,
    namespace and nftables table (the passing paths assert there was nothing left)."""
    from kumo.network.dataplane.linuxbridge import LinuxBridgeDataplane
    from kumo.network.firewall.nftables import NftablesFirewall

    found = subprocess.run(["pgrep", "-f", f"dnsmasq.*{state_dir}"], capture_output=True, text=True).stdout
    for pid in found.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    LinuxBridgeDataplane().cleanup()
    NftablesFirewall().clear()
