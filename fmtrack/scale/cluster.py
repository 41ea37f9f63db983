"""Joining or starting a Ray cluster, with one clear message when Ray is not installed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ..io import InputError

INSTALL_HINT = "more than one worker needs Ray: pip install 'fmtrack[ray]' (ray==2.60.0)"
# Settings a worker reads from its environment: passed on, so a task sees what the driver sees.
FORWARDED_ENV = ("FMTRACK_CACHE", "FMTRACK_DATA", "XDG_CACHE_HOME")


def require_ray() -> ModuleType:
    """The ``ray`` module, or InputError with the install command."""
    try:
        import ray
    except ImportError:
        raise InputError(None, INSTALL_HINT) from None
    return ray


@contextmanager
def ray_session(workers: int, address: str | None = None) -> Iterator[ModuleType]:
    """Ray ready for tasks: joins ``address`` (``auto``, ``HOST:6379``, ``ray://HOST:10001``) if given,
    else starts a local instance with ``workers`` CPUs and shuts it down afterwards. An instance that
    is already initialised in this process is used as it is and left running."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    runtime_env = {"env_vars": env} if env else None
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env)
    try:
        yield ray
    finally:
        ray.shutdown()


def get(ray: ModuleType, refs: Any) -> Any:
    """``ray.get``, raising a task's InputError or ValueError as itself, so the CLI prints one line."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, ValueError):
            raise err.cause from None
        raise
