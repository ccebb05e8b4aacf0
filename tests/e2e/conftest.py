"""One live ``kumo up`` on loopback for the whole e2e session.

The ``kumo`` fixture is a :class:`e2e_support.KumoProcess`: ``port``,
``state_dir``, ``clouds_yaml``, ``admin_password`` and the
``osc(*args, cloud="kumo", check=True, json=True)`` helper. Tests must use
unique names (``e2e_support.unique``) so they do not depend on each other
or on their order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import KumoProcess, clean_env


@pytest.fixture(scope="session")
def kumo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KumoProcess]:
    # Three simulated compute hosts, so anti-affinity and spreading have somewhere to go.
    server = KumoProcess(tmp_path_factory.mktemp("kumo-e2e") / "state",
                         extra_env={"KUMO_COMPUTE__DRIVER": "fake", "KUMO_COMPUTE__FAKE_HOSTS": "3"}).start()
    try:
        yield server
    finally:
        code = server.stop()
        assert server.proc is not None and server.proc.poll() is not None, "leaked a `kumo up` process"
        assert not server.killed, f"kumo up ignored SIGINT and had to be killed:\n{server.log()[-3000:]}"
        assert code == 0, f"kumo up exited with {code}:\n{server.log()[-3000:]}"


@pytest.fixture(scope="session")
def sdk_env(kumo: KumoProcess) -> Iterator[Path]:
    """Point in-process openstacksdk at the generated clouds.yaml (and nothing else of the developer's)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in os.environ.keys() - clean_env().keys():
            mp.delenv(key)
        mp.setenv("OS_CLIENT_CONFIG_FILE", str(kumo.clouds_yaml))
        yield kumo.clouds_yaml


@pytest.fixture(scope="session")
def conn(sdk_env: Path):  # type: ignore[no-untyped-def]
    """An openstacksdk connection as admin on the admin project (cloud ``kumo``)."""
    import openstack

    connection = openstack.connect(cloud="kumo")
    try:
        yield connection
    finally:
        connection.close()
