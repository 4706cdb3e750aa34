"""What a lab container can be given besides its image: a network to reach out on,
a Kubernetes-like service-account token, another user and other capabilities.

:class:`RuncSetup` is what ``start_runc`` applies to its OCI config. The
helpers build the host side: :func:`veth_netns` a network namespace with a
default route (so the target's connections to TEST-NET-3 addresses leave as
SYN_SENT and connected-UDP sockets instead of failing with ENETUNREACH; nothing
ever answers and nothing leaves the namespace), :func:`service_account_dir`
the files kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount
(fake values), bind-mounted read-only.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import RuntimeToolError

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FAKE_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImxhYiJ9.eyJzdWIiOiJsYWIifQ.exuvia-lab-not-a-real-token"  # noqa: S105
LAB_NET = ("10.77.0.2/24", "10.77.0.1/24", "10.77.0.1")  # target, its peer, the gateway


@dataclass
class RuncSetup:
    """Extras for a runc lab container's config (the defaults change nothing)."""

    user: tuple[int, int] = (0, 0)
    #: capabilities added to the default set (bounding, effective, permitted, ambient)
    add_caps: list[str] = field(default_factory=list)
    #: a network namespace to join (``/run/netns/NAME``) instead of a new empty one
    netns: str | None = None
    mounts: list[dict[str, Any]] = field(default_factory=list)
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no message"]
        raise RuntimeToolError(f"ip {' '.join(args[:4])} failed: {msg[0]}")


def veth_netns(name: str) -> tuple[str, Callable[[], None]]:
    """A network namespace with a veth pair, an address and a default route;
    returns its path and the function that deletes it."""
    addr, peer, gateway = LAB_NET
    _ip("netns", "add", name)

    def remove() -> None:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    try:
        _ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0")
        _ip("-n", name, "addr", "add", addr, "dev", "eth0")
        _ip("-n", name, "addr", "add", peer, "dev", "gw0")
        for dev in ("lo", "eth0", "gw0"):
            _ip("-n", name, "link", "set", dev, "up")
        _ip("-n", name, "route", "add", "default", "via", gateway, "dev", "eth0")
    except BaseException:
        remove()
        raise
    return f"/run/netns/{name}", remove


def service_account_dir(host_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a fake service-account volume to ``host_dir``; its read-only bind mount."""
    d = Path(host_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "token").write_text(FAKE_TOKEN)
    (d / "namespace").write_text("exuvia-lab")
    (d / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n")
    return {
        "destination": SA_DIR,
        "type": "bind",
        "source": str(d.resolve()),
        "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
    }


def incident_setup(workdir: str | os.PathLike[str], name: str) -> RuncSetup:
    """The demo's setup: a route out and a service-account token to steal."""
    setup = RuncSetup(mounts=[service_account_dir(Path(workdir) / f"{name}-sa")])
    path, remove = veth_netns(name)
    setup.netns = path
    setup.cleanup.append(remove)
    return setup


__all__ = ["SA_DIR", "RuncSetup", "incident_setup", "service_account_dir", "veth_netns"]
