"""A pod capture started from the triage app: `exuvia capture k8s://NS/POD/CONTAINER`
through the agent, with the session's actions in its custody log."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text

from collectors.capture import CaptureResult
from collectors.k8s.pods import PodRow
from forensics.errors import ExuviaError
from forensics.timeutil import now_ns
from tui.triage.screens.capture import capture_options
from tui.triage.session import TriageSession
from tui.triage.text import lit


def k8s_options(session: TriageSession) -> Any:
    """The cluster and agent options of the session (K8sOptions)."""
    from collectors.k8s.capture import K8sOptions  # noqa: PLC0415
    from collectors.k8s.spec import DEFAULT_IMAGE  # noqa: PLC0415

    o = session.opts
    return K8sOptions(
        kubeconfig=o.kubeconfig,
        context=o.context,
        image=o.k8s_image or os.environ.get("EXUVIA_COLLECTOR_IMAGE", DEFAULT_IMAGE),
    )


def run_pod_capture(
    session: TriageSession,
    pod: PodRow,
    container: str,
    client: Any,
    status: Callable[[Text], None],
) -> CaptureResult | None:
    """Capture the container (blocking: run it in a worker); None when it failed."""
    from collectors.k8s.capture import K8sCapture  # noqa: PLC0415

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns() / 1e9))
    out = session.bundle_path(f"{pod.name}-{container}", stamp)

    def progress(phase: str, _stats: object) -> None:
        status(lit(f"capture: {phase}"))

    cap = K8sCapture(pod.uri(container), capture_options(session, out), k8s_options(session),
                     progress, client=client)  # fmt: skip
    cap.custody = session.custody_for_capture()
    try:
        res = cap.run()
    except ExuviaError as err:
        session.record("capture.failed", error=str(err))
        status(lit(f"capture failed: {err}", "red"))
        return None
    session.record("capture.finished", path=str(res.path),
                   manifest_sha256=res.manifest_sha256, complete=res.complete)  # fmt: skip
    state = "complete" if res.complete else f"INCOMPLETE: {res.incomplete_reason}"
    status(
        Text("\n").join(
            [
                lit(f"bundle: {res.path} ({state})"),
                lit(f"manifest sha256: {res.manifest_sha256}"),
                Text("o: open in replay", style="dim"),
            ]
        )
    )
    return res
