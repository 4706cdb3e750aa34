"""Client side of a Kubernetes capture: ``exuvia capture k8s://NS/POD[/CONTAINER]``.

1. Resolve the URI through the API (pod, container, its containerID, node).
2. Start an agent next to it: reuse a running exuvia ephemeral container or add
   one (collectors.k8s.inject), or, with ``--node-level``, a privileged pod on
   the node (collectors.k8s.nodelevel).
3. ``exec`` the agent's ``capture`` and receive its bundle over the stream, as
   binary, into ``<out>.agent-stream`` (collectors.k8s.stream).
4. Write the final bundle ``<out>.partial``: every member of the agent's bundle
   copied through and checked against the agent's checkpoints and manifest
   (collectors.k8s.relay), the agent's manifest kept as ``agent/manifest.json``,
   then the Kubernetes facts (collectors.k8s.facts) and the footprint, then the
   client's own custody log and manifest. The agent's manifest hash and stream
   hash are checked against the ones the agent reported: end to end.
5. Rename to ``<out>`` when everything arrived and matched, else to
   ``<out>.incomplete`` (what it holds still verifies). The agent's raw stream
   is removed once the final bundle is sealed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from collectors.capture import (
    CaptureOptions,
    CaptureResult,
    Progress,
    close_quietly,
    refuse_existing,
    signed_details,
)
from collectors.context import examiner_host
from collectors.k8s import facts as k8s_facts
from collectors.k8s.assemble import Outcome, assemble
from collectors.k8s.client import KubeClient
from collectors.k8s.inject import Injection, digest_of, final_status, inject_ephemeral, rv
from collectors.k8s.memory_access import MemoryAccess, MemoryRefused, memory_warnings
from collectors.k8s.memory_access import decide as decide_memory
from collectors.k8s.nodelevel import delete_node_agent, start_node_agent
from collectors.k8s.spec import AGENT_COMMAND, DEFAULT_IMAGE, DEFAULT_PROFILE, parse_run_as
from collectors.k8s.stream import StreamResult, receive
from collectors.k8s.target import choose_container, parse_k8s, require_running
from forensics import __version__
from forensics.custody import CustodyLog
from forensics.errors import ExuviaError, OutputError, TargetGone


@dataclass
class K8sOptions:
    """How to reach the cluster and how to run the agent."""

    kubeconfig: str | None = None
    context: str | None = None
    image: str = DEFAULT_IMAGE
    profile: str = DEFAULT_PROFILE
    run_as: str | None = None
    node_level: bool = False
    node_namespace: str | None = None
    pull_policy: str = "IfNotPresent"
    start_timeout: float = 120.0
    idle: float = 300.0
    linger: float = 30.0
    stream_idle_timeout: float = 600.0
    keep_agent_stream: bool = False
    #: a fleet capture: the pod uid resolved, so a pod replaced under the same name
    #: (a StatefulSet's) is refused rather than captured in its place
    expect_uid: str | None = None


def agent_argv(
    opts: CaptureOptions, container_id: str, identity: dict[str, Any], mode: str
) -> list[str]:
    argv = [
        *AGENT_COMMAND,
        "capture",
        "--mode",
        mode,
        "--container-id",
        container_id,
        "--target-json",
        json.dumps(identity, sort_keys=True, separators=(",", ":")),
        "--files",
        opts.files,
        "--max-file-size",
        str(opts.max_file_size),
        "--compress",
        opts.compress,
        "--examiner",
        opts.examiner,
    ]
    if opts.case:
        argv += ["--case", opts.case]
    if not opts.redact:
        argv.append("--no-redact")
    mem = opts.memory
    if mem is not None:  # the agent runs the same collectors/memory code (docs/memory.md)
        argv += ["--memory", mem.mode]
        if mem.max_size is not None:
            argv += ["--memory-max", str(mem.max_size)]
        if mem.pids is not None:
            argv += ["--memory-pids", ",".join(str(p) for p in mem.pids)]
    return argv


def identity(
    pod: dict[str, Any], uri: str, container: str, st: dict[str, Any], node: Any
) -> dict[str, Any]:
    """What the API says about the target, for the agent's TargetInfo."""
    meta = pod.get("metadata") or {}
    running = (st.get("state") or {}).get("running") or {}
    return {
        "uri": uri,
        "container_id": st.get("containerID"),
        "name": container,
        "image": st.get("image"),
        "image_id": st.get("imageID"),
        "image_digest": digest_of(st.get("imageID")),
        "started_ns": k8s_facts.ts_ns(running.get("startedAt")),
        "status": "running",
        "runtime_facts": {
            "kubernetes": {
                "namespace": meta.get("namespace"),
                "pod": meta.get("name"),
                "pod_uid": meta.get("uid"),
                "container": container,
                "node": node,
                "restart_count": st.get("restartCount"),
            }
        },
    }


class K8sCapture:
    def __init__(
        self,
        uri: str,
        opts: CaptureOptions,
        k8s: K8sOptions,
        progress: Progress | None = None,
        client: KubeClient | None = None,
    ) -> None:
        self.uri = uri.strip()
        self.opts = opts
        self.k = k8s
        self.progress = progress or (lambda _p, _s: None)
        self.custody = CustodyLog(examiner=opts.examiner)
        self._client = client

    def _paths(self) -> tuple[Path, Path, Path]:
        out = self.opts.output
        partial = out.with_name(out.name + ".partial")
        spool = out.with_name(out.name + ".agent-stream")
        refuse_existing(out, partial, out.with_name(out.name + ".incomplete"), spool)
        return out, partial, spool

    def run(self) -> CaptureResult:
        out, partial, spool = self._paths()
        run_as = parse_run_as(self.k.run_as) if self.k.run_as else None
        start = self.custody.clock()
        self.custody.record(
            "capture.started",
            target=self.uri,
            tool=f"exuvia {__version__}",
            command_line=self.opts.argv,
            output=str(out),
            case=self.opts.case,
            signing_key=self.opts.signer.fingerprint if self.opts.signer else None,
        )
        kc = self._client or KubeClient(self.k.kubeconfig, self.k.context)
        try:
            return self._run(kc, out=out, partial=partial, spool=spool, run_as=run_as, start=start)
        finally:
            if self._client is None:
                kc.close()

    def _run(
        self,
        kc: KubeClient,
        *,
        out: Path,
        partial: Path,
        spool: Path,
        run_as: tuple[int, int | None] | None,
        start: int,
    ) -> CaptureResult:
        info = kc.info
        self.custody.record(
            "k8s.connected",
            server=info.server,
            source=info.source,
            context=info.context,
            namespace=info.namespace,
        )
        ref = parse_k8s(self.uri.partition("://")[2], self.uri)
        ns = ref.namespace or kc.namespace
        pod = kc.get_pod(ns, ref.pod)
        uid = (pod.get("metadata") or {}).get("uid")
        if self.k.expect_uid and uid != self.k.expect_uid:
            raise TargetGone(
                f"pod {ns}/{ref.pod} was replaced since it was resolved "
                f"(uid {self.k.expect_uid}, now {uid})"
            )
        container, why = choose_container(pod, ref.container)
        st = require_running(pod, container)
        uri = ref.uri(ns, container)
        node = (pod.get("spec") or {}).get("nodeName")
        ident = identity(pod, uri, container, st, node)
        self.custody.record(
            "target.resolved",
            uri=uri,
            container=container,
            chosen_because=why,
            container_id=st.get("containerID"),
            pod_uid=(pod.get("metadata") or {}).get("uid"),
            node=node,
            pod_resource_version=rv(pod),
        )
        access = self._memory_access(kc, pod, container, run_as)
        self.progress("starting the agent", None)
        inj = self._start_agent(kc, pod, container, uri, run_as, access=access)
        if access is not None:
            inj.footprint["memory_access"] = access.to_dict()
        self.custody.record("agent.added" if inj.failed else "agent.running", **_summary(inj))
        argv = agent_argv(self.opts, str(st.get("containerID")), ident, inj.mode)
        try:
            if inj.failed:
                self.custody.record("agent.failed_to_start", reason=inj.failed)
                spool.touch(mode=0o640, exist_ok=False)
                result = StreamResult(broken=f"the agent did not start: {inj.failed}")
            else:
                result = self._stream(kc, inj, argv, spool)
        finally:
            if inj.mode == "node":
                self.progress("deleting the node-level pod", None)
                delete_node_agent(kc, inj)
                rec = inj.footprint.get("pod") or {}
                self.custody.record(
                    "agent.pod_deleted",
                    namespace=rec.get("namespace"),
                    pod=rec.get("name"),
                    deletion=rec.get("deletion"),
                )
        try:
            pod_after = kc.get_pod(ns, ref.pod)
        except ExuviaError as err:
            pod_after = pod
            self.custody.record("k8s.warning", message=f"pod not read after the capture: {err}")
        inj.footprint["pod_resource_version_after"] = rv(pod_after)
        if inj.mode == "ephemeral":
            inj.footprint["agent_status_after"] = final_status(pod_after, inj.container)
        inj.footprint["agent_command"] = argv
        self.progress("writing the bundle", None)
        outcome = self._write(
            kc,
            partial=partial,
            spool=spool,
            result=result,
            inj=inj,
            pod=pod,
            pod_after=pod_after,
            ident=ident,
            info=info,
            start=start,
        )
        final, custody_path = self._seal(out, partial, outcome)
        if not self.k.keep_agent_stream:
            spool.unlink(missing_ok=True)
        return CaptureResult(
            path=final,
            complete=outcome.complete,
            incomplete_reason="; ".join(outcome.incomplete),
            manifest_sha256=outcome.manifest_sha256,
            file_sha256=outcome.file_sha256,
            file_bytes=outcome.file_bytes,
            counts=outcome.counts,
            skips=outcome.skips,
            custody_path=custody_path,
            signed_by=self.opts.signer.fingerprint if self.opts.signer else None,
            warnings=memory_warnings(self.opts.memory is not None, outcome.manifest),
        )

    def _seal(self, out: Path, partial: Path, outcome: Outcome) -> tuple[Path, Path]:
        """Give the sealed bundle its final name; returns it and its custody sidecar
        (collectors.store.k8s_capture seals into the store instead)."""
        final = out if outcome.complete else out.with_name(out.name + ".incomplete")
        os.rename(partial, final)
        self.custody.record(
            "bundle.sealed",
            path=str(final),
            manifest_sha256=outcome.manifest_sha256,
            file_sha256=outcome.file_sha256,
            bytes=outcome.file_bytes,
            complete=outcome.complete,
            **signed_details(self.opts.signer),
        )
        return final, self.custody.write_sidecar(final)

    def _open_output(self, partial: Path) -> BinaryIO:
        """Where the final bundle is written while it is assembled."""
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        except OSError as err:
            raise OutputError(f"cannot create {partial}: {err.strerror}") from err
        return os.fdopen(fd, "wb", buffering=1 << 20)

    def _close_output(self, raw: BinaryIO) -> None:
        raw.flush()
        os.fsync(raw.fileno())
        raw.close()

    def _start_agent(
        self,
        kc: KubeClient,
        pod: dict[str, Any],
        container: str,
        uri: str,
        run_as: tuple[int, int | None] | None,
        *,
        access: MemoryAccess | None = None,
    ) -> Injection:
        if self.k.node_level:
            ns = self.k.node_namespace or str((pod.get("metadata") or {}).get("namespace"))
            return start_node_agent(
                kc,
                pod,
                namespace=ns,
                image=self.k.image,
                pull_policy=self.k.pull_policy,
                idle=self.k.idle,
                linger=min(self.k.linger, 5.0),
                start_timeout=self.k.start_timeout,
                target_uri=uri,
            )
        return inject_ephemeral(
            kc,
            pod,
            container,
            image=self.k.image,
            profile=self.k.profile,
            run_as=run_as,
            pull_policy=self.k.pull_policy,
            idle=self.k.idle,
            linger=self.k.linger,
            start_timeout=self.k.start_timeout,
            extra_caps=access.extra_caps if access is not None else (),
        )

    def _memory_access(
        self,
        kc: KubeClient,
        pod: dict[str, Any],
        container: str,
        run_as: tuple[int, int | None] | None,
    ) -> MemoryAccess | None:
        """With --memory: how the agent will read it, decided before anything is
        added to the pod (MemoryRefused, one line, where the level forbids it)."""
        if self.opts.memory is None:
            return None
        if self.k.node_level:
            access = MemoryAccess((), None, "node level: a privileged pod with hostPID")
        else:
            self.progress("checking what the namespace admits for --memory", None)
            try:
                access = decide_memory(
                    kc,
                    pod,
                    container,
                    image=self.k.image,
                    profile=self.k.profile,
                    run_as=run_as,
                    pull_policy=self.k.pull_policy,
                )
            except MemoryRefused as err:
                self.custody.record("memory.refused", reason=str(err))
                raise
        self.custody.record("memory.access", **access.to_dict())
        return access

    def _stream(self, kc: KubeClient, inj: Injection, argv: list[str], spool: Path) -> StreamResult:
        def moved(n: int) -> None:
            self.progress(f"receiving the bundle: {n / 1e6:.1f} MB", None)

        try:
            fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        except OSError as err:
            raise OutputError(f"cannot create {spool}: {err.strerror}") from err
        raw = os.fdopen(fd, "wb", buffering=0)
        self.progress("receiving the bundle", None)
        inj.footprint["stream_started_ns"] = self.custody.clock()
        self.custody.record(
            "agent.exec", namespace=inj.namespace, pod=inj.pod, container=inj.container
        )
        try:
            try:
                channel = kc.exec(
                    inj.namespace,
                    inj.pod,
                    inj.container,
                    argv,
                    idle_timeout=self.k.stream_idle_timeout,
                )
            except OutputError:
                raise
            except ExuviaError as err:
                # the agent is there (its footprint must be kept): the bundle is
                # written anyway, incomplete, with the reason
                result = StreamResult(broken=f"could not start the agent's capture: {err}")
            else:
                result = receive(channel, raw, moved)
            os.fsync(raw.fileno())
        except OSError as err:
            close_quietly(raw)
            raise OutputError(f"writing {spool} failed: {err.strerror}; it is kept") from None
        except BaseException:
            close_quietly(raw)
            raise
        raw.close()
        inj.footprint["stream_ended_ns"] = self.custody.clock()
        inj.footprint["agent_exit_code"] = result.exit_code
        self.custody.record(
            "agent.stream.ended",
            bytes=result.nbytes,
            sha256=result.sha256,
            exit_code=result.exit_code,
            broken=result.broken,
            seconds=round(result.seconds, 3),
        )
        return result

    def _write(
        self,
        kc: KubeClient,
        *,
        partial: Path,
        spool: Path,
        result: StreamResult,
        inj: Injection,
        pod: dict[str, Any],
        pod_after: dict[str, Any],
        ident: dict[str, Any],
        info: Any,
        start: int,
    ) -> Outcome:
        raw = self._open_output(partial)
        host = examiner_host()
        try:
            outcome = assemble(
                raw,
                opts=self.opts,
                custody=self.custody,
                api=kc,
                spool=spool,
                result=result,
                inj=inj,
                pod_before=pod,
                pod_after=pod_after,
                identity=ident,
                cluster={
                    "server": info.server,
                    "source": info.source,
                    "context": info.context,
                    "default_namespace": info.namespace,
                },
                host=host,
                start_ns=start,
            )
            self._close_output(raw)
        except OSError as err:
            close_quietly(raw)
            raise OutputError(
                f"writing {partial} failed: {err.strerror}; the agent's stream is kept in {spool}"
            ) from None
        return outcome


def _summary(inj: Injection) -> dict[str, Any]:
    fp = inj.footprint
    return {
        "mode": fp.get("mode"),
        "namespace": inj.namespace,
        "pod": inj.pod,
        "container": inj.container,
        "reused": fp.get("reused"),
        "image": fp.get("image_ran"),
        "image_id": fp.get("image_id"),
    }
