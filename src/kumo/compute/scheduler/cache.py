"""The scheduler process' host states and the claims made on them (Nova's ``HostManager`` host map).

**Within one process** claims never overcommit: a decision and its claim
(``HostSelector.select``: filter, weigh, ``consume``) is synchronous code
with no ``await`` in it, so no other coroutine can see a host between the
decision and the claim. ``claim`` still takes one ``asyncio.Lock`` for the
decision, because ``refresh`` awaits its loader (a database read) and must
not interleave with decisions: a row read before a claim would otherwise
overwrite it. One lock, not one per host, because every decision reads every
host; at about a millisecond per decision it is not the bottleneck.

The optional ``commit`` hook persists a claim after the lock is released;
if it fails, the claim is released, so the in-memory state never keeps a
claim the database refused. Meanwhile other decisions in this process
already see it (the conservative direction: never overcommit).

**Across processes** (several schedulers, or a scheduler and a compute
agent's own audit) this cache is only a view. Atomicity will come from the
conductor persisting each claim as a conditional UPDATE on the compute node
row (``... SET memory_mb_used = memory_mb_used + :ram WHERE id = :id AND
memory_mb_used + :ram <= :limit``, likewise vCPUs and disk) as the
``commit`` hook; zero rows updated means another process took the room, the
claim is released here, the host re-read, and the instance rescheduled,
which is what Placement's generation conflicts do for Nova.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence

from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec
from kumo.compute.scheduler.selector import HostSelector, Selection

CommitHook = Callable[[Sequence[Selection]], Awaitable[None]]
HostLoader = Callable[[], Awaitable[Iterable[HostState]]]
_ALL_FIELDS = tuple(f.name for f in dataclasses.fields(HostState) if f.name != "host")
_HEALTH = ("enabled", "up", "availability_zone")


class HostStateCache:
    """Host states by host name, with serialised decisions and claims."""

    def __init__(self, hosts: Iterable[HostState] = (), *, selector: HostSelector | None = None,
                 commit: CommitHook | None = None) -> None:
        self._hosts: dict[str, HostState] = {h.host: h for h in hosts}
        self._selector = selector or HostSelector()
        self._commit = commit
        self._lock = asyncio.Lock()

    @property
    def hosts(self) -> list[HostState]:
        return list(self._hosts.values())

    def get(self, host: str) -> HostState | None:
        return self._hosts.get(host)

    def update(self, states: Iterable[HostState], *, prune: bool = False) -> None:
        """Take fresh reports from compute nodes (Nova's ``HostState.update``).

        Health and zone (``enabled``, ``up``, ``availability_zone``) are always
        taken. Usage is taken unless the cached state was claimed on after
        the report was written (its ``updated_at`` is newer), so a claim
        that the compute node has not reported yet is not lost. ``prune``
        drops hosts missing from ``states`` (deleted compute nodes). Cached
        objects are updated in place, so outstanding ``Selection`` objects still
        point at the host the scheduler uses.
        """
        seen = set()
        for state in states:
            seen.add(state.host)
            cached = self._hosts.get(state.host)
            if cached is None:
                self._hosts[state.host] = state
                continue
            newer_claims = cached.updated_at and state.updated_at and cached.updated_at > state.updated_at
            for name in _HEALTH if newer_claims else _ALL_FIELDS:
                setattr(cached, name, getattr(state, name))
        if prune:
            for name in set(self._hosts) - seen:
                del self._hosts[name]

    async def refresh(self, load: HostLoader, *, prune: bool = True) -> None:
        """``update`` from ``load()`` (a database read), never interleaved with a decision."""
        async with self._lock:
            self.update(await load(), prune=prune)

    async def claim(self, spec: RequestSpec, hosts: Sequence[HostState] | None = None, num: int | None = None, *,
                    instance_uuids: Sequence[str] = ()) -> list[Selection]:
        """Choose and claim hosts for ``spec``; raises ``NoValidHost`` (and claims nothing) if it cannot.

        ``hosts`` narrows the candidates (they must be this cache's objects,
        e.g. from ``get``); by default every cached host is a candidate.
        """
        async with self._lock:
            candidates = self.hosts if hosts is None else hosts
            selections = self._selector.select(spec, candidates, num, instance_uuids=instance_uuids)
        if self._commit is not None:
            try:
                await self._commit(selections)
            except BaseException:
                for selection in reversed(selections):
                    selection.release()
                raise
        return selections

    async def release(self, selections: Iterable[Selection]) -> None:
        """Give claims back, e.g. when the build on the chosen host failed before the conductor reschedules."""
        async with self._lock:
            for selection in selections:
                selection.release()
