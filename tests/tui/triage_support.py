"""Shared pieces of the triage app tests: the lab fixtures and a deterministic set-up."""

from __future__ import annotations

import os
import time
from typing import Any, TypeVar

# the real shell-less containers of the integration tests (tests/integration/conftest.py)
from tests.integration.conftest import (  # noqa: F401
    containerd_image,
    containerd_service,
    containerd_target,
    docker_image,
    docker_service,
    docker_target,
    lab,
    lab_dir,
    lab_tag,
    podman_image,
    podman_target,
    runc_target,
    target_oci,
    target_rootfs,
)

SIZE = (120, 40)
T = TypeVar("T")


def deterministic_env() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


async def wait_for(pilot: Any, cond: Any, timeout: float = 60.0, what: str = "") -> None:
    """Let the app run until ``cond()`` holds (workers are real threads reading a real
    target: the bound is generous, CI shares the machine)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.05)


async def query_when_mounted(pilot: Any, cls: type[T], timeout: float = 60.0) -> T:
    """The one ``cls`` widget on the current screen, once it is mounted (the
    dashboard mounts its other tabs lazily, after the first frame)."""
    app = pilot.app
    await wait_for(pilot, lambda: bool(list(app.screen.query(cls))), timeout, cls.__name__)
    return app.screen.query_one(cls)
