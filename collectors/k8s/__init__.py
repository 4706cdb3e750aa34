"""Kubernetes capture: ``k8s://[NAMESPACE/]POD[/CONTAINER]`` through an ephemeral agent.

Modules (docs/kubernetes.md):

- ``client``     the only module that imports and calls the ``kubernetes`` client;
                 it translates ApiException into forensics.errors
- ``target``     k8s:// URIs, container choice
- ``spec``       the ephemeral (or node-level) agent container spec and profiles
- ``admission``  reading a PodSecurity rejection: level, fields, which profile passes
- ``findpid``    finding the target container's init process from inside the pod
                 (no kubernetes import: the agent uses it)
- ``stream``     the agent's bundle over the exec stream, as binary
- ``relay``      the agent's bundle copied, member by member and verified, into
                 the client's bundle
- ``facts``      pod, owners, events, statuses, logs, node -> artifacts/k8s/*
- ``capture``    the client-side orchestration; ``nodelevel`` the privileged fallback

Importing this package imports nothing of the ``kubernetes`` client, so the
in-pod agent (``collectors.agent``) can use ``findpid`` without it.
"""

from __future__ import annotations
