"""Password hashing: argon2id (the Password Hashing Competition winner).

Hashes are salted and self-describing (``$argon2id$v=19$m=...``), so cost
parameters can be raised later and old hashes still verify. Hashing is
deliberately slow, so it runs in a worker thread and never stalls the event
loop that serves every other request.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1) -> None:
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # A real hash to verify against when the user does not exist, so a
        # wrong user name costs as much time as a wrong password.
        self._dummy = self._ph.hash("kumo-dummy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._ph.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._ph.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
