"""What the compute API's services need, built once by the node (``Node.compute_deps``).

Service classes (``ServerService``, ``ServerActions``, ``QuotaService`` ...)
take this one object instead of a growing list of constructor arguments, so
adding a collaborator touches the node and this file only.
"""

from __future__ import annotations

from dataclasses import dataclass

from kumo.compute.flavors import FlavorService
from kumo.compute.keypairs import KeypairService
from kumo.compute.network import NetworkAPI
from kumo.compute.rpcapi import ComputeAgentAPI, ConductorAPI
from kumo.core.bus import Bus
from kumo.core.clients import ImageClient
from kumo.core.config import ComputeOptions, Settings
from kumo.core.db import Database


@dataclass
class ComputeDeps:
    db: Database
    settings: Settings
    bus: Bus
    images: ImageClient
    flavors: FlavorService
    keypairs: KeypairService
    conductor: ConductorAPI
    agents: ComputeAgentAPI
    network: NetworkAPI | None = None  # None: a cloud without the network service (servers get no NICs)

    @property
    def options(self) -> ComputeOptions:
        return self.settings.compute

    @property
    def service_down_time(self) -> float:
        return self.settings.node.service_down_time
