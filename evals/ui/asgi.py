"""An ASGI app that builds the real one on its first request, so loading the plugin imports nothing heavy."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyASGIApp:
    """Wraps ``"package.module:factory"``; the factory is imported and called once, on the first request.

    The scheduler, the DAG processor and the triggerer load every plugin too; they never serve HTTP, so they
    never pay for FastAPI, DuckDB or the auth machinery this app needs.
    """

    def __init__(self, factory: str) -> None:
        module, _, name = factory.partition(":")
        if not module or not name:
            raise ValueError(f"factory must look like 'package.module:function', got {factory!r}")
        self.factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def _build(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                module, _, name = self.factory.partition(":")
                self._app = getattr(importlib.import_module(module), name)()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or self._build()
        await app(scope, receive, send)

    def __repr__(self) -> str:
        return f"LazyASGIApp({self.factory!r})"
