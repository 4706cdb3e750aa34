"""Reading PodSecurity rejections, our own checks, and which profile would pass.

The messages are verbatim answers of the e2e cluster's kube-apiserver v1.32.2.
"""

from __future__ import annotations

from typing import Any

import pytest

from collectors.k8s.admission import (
    check_container,
    explain,
    parse_rejection,
    passing_profiles,
)
from collectors.k8s.spec import PROFILES, ephemeral_container

RESTRICTED_GENERAL = (
    'pods "tgt" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation '
    '!= false (container "exuvia-x2" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "exuvia-x2" must set securityContext.capabilities.drop'
    '=["ALL"]; container "exuvia-x2" must not include "SYS_PTRACE" in '
    "securityContext.capabilities.add)"
)
BASELINE_GENERAL = (
    'pods "lab" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities '
    '(container "exuvia-be4b8f" must not include "SYS_PTRACE" in securityContext.capabilities.add)'
)
RESTRICTED_NODE_POD = (
    'pods "exuvia-node-1ebae7" is forbidden: violates PodSecurity "restricted:latest": host '
    'namespaces (hostPID=true), privileged (container "exuvia" must not set securityContext.'
    'privileged=true), allowPrivilegeEscalation != false (container "exuvia" must set '
    "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
    '"exuvia" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
    'container "exuvia" must set securityContext.runAsNonRoot=true), seccompProfile (pod or '
    'container "exuvia" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
    '"Localhost")'
)
RBAC_DENIAL = (
    'pods "big" is forbidden: User "system:serviceaccount:exp1:cap" cannot get resource '
    '"pods/exec" in API group "" in the namespace "exp1"'
)


def test_parse_restricted() -> None:
    rej = parse_rejection(RESTRICTED_GENERAL)
    assert rej is not None
    assert (rej.level, rej.version, rej.policy) == ("restricted", "latest", "restricted:latest")
    assert [v.check for v in rej.violations] == [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
    ]
    caps = rej.violations[1]
    assert caps.containers == ["exuvia-x2"] and len(caps.details) == 2
    assert caps.fields == ["securityContext.capabilities.add", "securityContext.capabilities.drop"]
    assert rej.violations[0].fields == ["securityContext.allowPrivilegeEscalation"]


def test_parse_node_pod_rejection_has_pod_level_checks() -> None:
    rej = parse_rejection(RESTRICTED_NODE_POD)
    assert rej is not None and len(rej.violations) == 6
    host = rej.violations[0]
    assert host.check == "host namespaces" and host.fields == ["hostPID"]
    assert host.containers == []
    assert rej.violations[-1].fields == ["securityContext.seccompProfile.type"]


def test_not_a_rejection() -> None:
    assert parse_rejection(RBAC_DENIAL) is None
    assert parse_rejection("") is None


def spec(profile: str, pod: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    return ephemeral_container(
        name="exuvia-t", image="i", target_container="app", profile=profile, pod=pod,
        target=target,
    ).container  # fmt: skip


ROOT_POD: dict[str, Any] = {"spec": {"containers": [{"name": "app"}]}}
RESTRICTED_POD: dict[str, Any] = {
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    }
}  # fmt: skip


def candidates(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    target = pod["spec"]["containers"][0]
    return {p: spec(p, pod, target) for p in PROFILES}


@pytest.mark.parametrize(
    ("pod", "level", "passing"),
    [
        (ROOT_POD, "privileged", list(PROFILES)),
        (ROOT_POD, "baseline", ["auto", "baseline", "restricted"]),
        (ROOT_POD, "restricted", ["restricted"]),
        (RESTRICTED_POD, "baseline", ["auto", "baseline", "restricted"]),
        (RESTRICTED_POD, "restricted", ["auto", "restricted"]),
    ],
)
def test_which_profiles_pass(pod: dict[str, Any], level: str, passing: list[str]) -> None:
    pod_sc = pod["spec"].get("securityContext") or {}
    assert passing_profiles(candidates(pod), pod_sc, level) == passing


def test_check_container_names_fields() -> None:
    bad = check_container(
        {"securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]},
                             "procMount": "Unmasked",
                             "seccompProfile": {"type": "Unconfined"}}},
        {"runAsUser": 0},
        "restricted",
    )  # fmt: skip
    text = "\n".join(bad)
    for field in ("privileged", "capabilities.add", "procMount", "seccompProfile.type",
                  "allowPrivilegeEscalation", 'drop: must include "ALL"', "runAsNonRoot",
                  "runAsUser: must not be 0"):  # fmt: skip
        assert field in text, (field, text)
    assert check_container({}, {}, "privileged") == []
    with pytest.raises(ValueError, match="unknown PodSecurity level"):
        check_container({}, {}, "strict")


def test_explain_names_policy_fields_and_a_passing_profile() -> None:
    text = explain(RESTRICTED_GENERAL, "exuvia-x2", "general", candidates(RESTRICTED_POD),
                   RESTRICTED_POD["spec"]["securityContext"])  # fmt: skip
    assert text.startswith('PodSecurity "restricted:latest" rejected the agent container exuvia-x2')
    assert "(profile general)" in text
    assert (
        "fields: securityContext.allowPrivilegeEscalation, securityContext.capabilities.add" in text
    )
    assert "securityContext.capabilities.drop" in text
    assert "profiles that pass restricted: auto, restricted (use --profile auto)" in text

    text = explain(BASELINE_GENERAL, "exuvia-be4b8f", "general", candidates(ROOT_POD), {})
    assert 'PodSecurity "baseline:latest"' in text and "securityContext.capabilities.add" in text
    assert "use --profile auto" in text


def test_explain_when_no_profile_can_pass() -> None:
    text = explain(RESTRICTED_GENERAL.replace("exuvia-x2", "exuvia-x3"), "exuvia-x3", "auto",
                   {"auto": {"securityContext": {"privileged": True}}}, {})  # fmt: skip
    assert "none of exuvia's profiles passes restricted" in text and "--node-level" in text


def test_explain_when_the_pods_own_containers_violate_the_policy() -> None:
    msg = (
        'pods "web" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "app" must not set securityContext.privileged=true)'
    )
    text = explain(msg, "exuvia-abc", "auto", candidates(ROOT_POD), {})
    assert "the pod's own containers (app) violate it too" in text
    assert "no agent profile can pass" in text


def test_explain_passes_other_messages_through() -> None:
    assert explain(RBAC_DENIAL, "exuvia-x", "auto", {}, {}) == RBAC_DENIAL
