"""The demo and test lab: shell-less target containers that stage an incident.

``target.c`` is the target program (built static, the only binary in its image);
``rootfs`` builds the image tree; ``launch`` (runc) and ``runtimes`` (podman,
containerd, docker) start it; ``lab`` ties them together for ``exuvia demo``
(:func:`tui.demo.lab.start_demo_container`) and ``python -m tui.demo.lab``.
"""

from __future__ import annotations
