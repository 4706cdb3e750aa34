"""Live views of a pod's container through the agent: ``agent serve`` over exec.

The agent runs where a capture's does: an exuvia ephemeral container that shares
the target's PID namespace (collectors.k8s.inject), reused when one for the
same target and image is still running, since ephemeral containers can never
be removed. ``serve`` is then exec'd into it with stdin open, and
collectors.live.remote speaks its JSON-lines protocol over the websocket's
stdin/stdout channels. Closing sends ``bye`` and ends the exec; the agent also
exits on EOF and after ``serve_idle`` seconds without a request, and the
container's ``wait`` exits ``linger`` seconds after that.

Node-level agents are not used here: live views need the ephemeral container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collectors.k8s.capture import K8sOptions, identity
from collectors.k8s.client import ExecChannel, KubeClient
from collectors.k8s.inject import Injection, inject_ephemeral
from collectors.k8s.spec import AGENT_COMMAND, parse_run_as
from collectors.k8s.stream import STATUS, STDERR, STDOUT, exit_code, parse_events
from collectors.k8s.target import choose_container, require_running
from collectors.live.remote import RemoteTarget
from forensics.errors import ExuviaError
from forensics.timeutil import now_ns

MAX_STDERR = 1 << 20
#: the agent's serve exits after this long without a request
SERVE_IDLE = 600.0
#: no answer within this long: the stream is considered broken
STREAM_TIMEOUT = 900.0


class ExecTransport:
    """collectors.live.remote.Transport over an exec websocket (stdin, stdout)."""

    def __init__(self, channel: ExecChannel) -> None:
        self.channel = channel
        self._frames = channel.frames()
        self._err = bytearray()
        self._status = bytearray()

    def send(self, data: bytes) -> None:
        self.channel.write(data)

    def recv(self) -> bytes:
        for ch, data in self._frames:
            if ch == STDOUT and data:
                return bytes(data)
            if ch == STDERR and len(self._err) < MAX_STDERR:
                self._err += data[: MAX_STDERR - len(self._err)]
            elif ch == STATUS:
                self._status += data
        return b""

    def close(self) -> None:
        self.channel.close_stdin()
        self.channel.close()

    def diagnostics(self) -> str:
        events = parse_events(bytes(self._err))
        said = [f"{e.get('event')}: {e.get('message') or e.get('reason') or ''}" for e in events]
        if self._status:
            try:
                code = exit_code(json.loads(bytes(self._status)))
            except ValueError:
                code = None
            said.append(f"exit code {code}")
        return "\n".join(said) or bytes(self._err).decode("utf-8", "replace").strip()


@dataclass
class PodLive:
    """A pod's container seen live through the agent; ``close()`` when done."""

    namespace: str
    pod: str
    container: str
    uri: str
    remote: RemoteTarget
    injection: Injection
    identity: dict[str, Any]
    started_ns: int = field(default_factory=now_ns)

    def summary(self) -> dict[str, Any]:
        """What the custody log records about the agent serving this session."""
        fp = self.injection.footprint
        return {
            "target": self.uri,
            "agent_container": self.injection.container,
            "reused": fp.get("reused"),
            "image": fp.get("image_ran") or fp.get("image_requested"),
            "image_digest": fp.get("image_digest"),
            "agent_pid": self.remote.hello.get("agent_pid"),
            "target_pid_in_pod": self.remote.hello.get("pid"),
            "found_by": self.remote.hello.get("found_by"),
            "files_view": self.remote.hello.get("view_note"),
        }

    def requests(self) -> dict[str, int]:
        return dict(self.remote.link.sent)

    def close(self) -> None:
        self.remote.close()


def open_live(
    kc: KubeClient, namespace: str, pod_name: str, container: str | None, k8s: K8sOptions
) -> PodLive:
    """Start (or reuse) the agent next to the container and open ``agent serve``."""
    pod = kc.get_pod(namespace, pod_name)
    name, _why = choose_container(pod, container)
    st = require_running(pod, name)
    uri = f"k8s://{namespace}/{pod_name}/{name}"
    node = (pod.get("spec") or {}).get("nodeName")
    ident = identity(pod, uri, name, st, node)
    inj = inject_ephemeral(
        kc,
        pod,
        name,
        image=k8s.image,
        profile=k8s.profile,
        run_as=parse_run_as(k8s.run_as) if k8s.run_as else None,
        pull_policy=k8s.pull_policy,
        idle=k8s.idle,
        linger=k8s.linger,
        start_timeout=k8s.start_timeout,
    )
    if inj.failed:
        raise ExuviaError(f"the agent container {inj.container} did not start: {inj.failed}")
    argv = [*AGENT_COMMAND, "serve", "--mode", "ephemeral", "--container-id",
            str(st.get("containerID")), "--idle", f"{SERVE_IDLE:g}"]  # fmt: skip
    channel = kc.exec(
        namespace, pod_name, inj.container, argv, idle_timeout=STREAM_TIMEOUT, stdin=True
    )
    remote = RemoteTarget(ExecTransport(channel))
    return PodLive(namespace, pod_name, name, uri, remote, inj, ident)
