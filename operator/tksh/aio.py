"""Small asyncio helpers shared by the package's long-running pieces."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Service:
    """Something started and closed: ``async with`` it, or call ``start()`` and ``close()``.

    Subclasses implement the two methods; ``close()`` must be safe to call twice and after a
    failed start.
    """

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
