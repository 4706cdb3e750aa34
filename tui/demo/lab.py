"""The lab: real shell-less target containers for tests and for ``exuvia demo``.

``start_demo_container(workdir)`` builds the target (a static C program in an
image with no shell) and runs it under runc on an overlayfs, returning a
:class:`LabContainer` handle once it has staged its activity. Use the handle as
a context manager, or call ``stop()``, to remove every trace.

From a shell (as root)::

    python -m tui.demo.lab [--runtime runc|podman|containerd|docker] [--workdir DIR]

starts one target, prints its URI and PID, and stops it on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from forensics.errors import ExuviaError

from . import runtimes as rt
from .launch import LabContainer, require_root, start_runc, unique_name
from .rootfs import IMAGE_ENV, TARGET_PATH, build_demo_rootfs
from .staging import incident_setup

RUNTIMES = ("runc", "podman", "containerd", "docker")
IMAGE_REPO = "localhost/exuvia-lab/target"


def start_demo_container(workdir: str | os.PathLike[str]) -> LabContainer:
    """Build the demo target in ``workdir`` and run it under runc (needs root + runc).

    The container gets a network with a default route and a (fake) Kubernetes
    service-account token (tui/demo/staging.py), so the implant's outbound
    connections and its read of the token are there to find.
    Returns once the target is ready (it logged "ready" and wrote its
    after-start file). ``workdir`` keeps the build and the bundle; ``stop()``
    removes the container, its overlay mount, its network namespace and its
    bundle directory.
    """
    require_root("the demo (runc and an overlay mount)")
    wd = Path(workdir)
    rootfs = build_demo_rootfs(wd)
    name = unique_name()
    setup = incident_setup(wd, name)
    return start_runc(rootfs, wd / "bundles", name=name, setup=setup)


@functools.cache
def oci_image_module() -> ModuleType:
    """tests/support/oci_image.py (a stand-alone script of the source tree), loaded by path."""
    script = Path(__file__).resolve().parents[2] / "tests" / "support" / "oci_image.py"
    spec = importlib.util.spec_from_file_location("exuvia_oci_image", script)
    if spec is None or spec.loader is None or not script.is_file():
        raise ExuviaError(f"OCI image support needs a source checkout ({script} is missing)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def oci_archive(rootfs: str | os.PathLike[str], out: str | os.PathLike[str], ref: str) -> Any:
    """Write an OCI image layout tar of the target rootfs; returns its ``OciImage``."""
    return oci_image_module().build_oci_archive(
        rootfs, ref, out, entrypoint=[TARGET_PATH], env=list(IMAGE_ENV)
    )


@contextlib.contextmanager
def lab_container(runtime: str, workdir: str | os.PathLike[str]) -> Iterator[LabContainer]:
    """Start one target with ``runtime``, with its image and services, and clean up after."""
    wd = Path(workdir)
    rootfs = build_demo_rootfs(wd)
    tag = unique_name("t")
    with contextlib.ExitStack() as stack:
        if runtime == "runc":
            handle = start_runc(rootfs, wd / "bundles")
        elif runtime == "podman":
            ref = f"{IMAGE_REPO}:{tag}"
            rt.podman_import(rootfs, ref, wd / "rootfs.tar")
            stack.callback(rt.podman_remove_image, ref)
            handle = rt.start_podman(ref)
        elif runtime == "containerd":
            ref = f"{IMAGE_REPO}:{tag}"
            svc = rt.ContainerdService(wd).ensure()
            stack.callback(svc.close)
            rt.ctr_import(oci_archive(rootfs, wd / "image.tar", ref).path)
            stack.callback(rt.ctr_remove_image, ref)
            handle = rt.start_containerd(ref, wd / "logs")
        elif runtime == "docker":
            ref = f"{IMAGE_REPO}:{tag}"
            docker = rt.DockerService(wd).ensure()
            stack.callback(docker.close)
            rt.podman_load(oci_archive(rootfs, wd / "image.tar", ref).path)
            stack.callback(rt.podman_remove_image, ref)
            handle = rt.start_docker(ref, docker)
        else:
            raise ExuviaError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        stack.callback(handle.stop)
        yield handle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tui.demo.lab", description="Run one shell-less lab target container."
    )
    p.add_argument("--runtime", choices=RUNTIMES, default="runc")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with contextlib.ExitStack() as stack:
            wd = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            handle = stack.enter_context(lab_container(args.runtime, wd))
            print(f"{handle.uri}  pid {handle.pid}  log {handle.log_path}", flush=True)
            print("running; press Ctrl-C to stop and clean up", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except ExuviaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
