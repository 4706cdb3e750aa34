"""Log lines that mention common attack tooling: reverse shells, download-and-run,
scanners, exploit payloads, post-exploitation kits, miners, cluster discovery."""

from __future__ import annotations

from collections.abc import Iterator

from forensics.findings.facts import Facts, LogHit
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "logs"

#: pattern id -> (severity, what it is, regular expression; matched case-insensitively)
ATTACK_PATTERNS: dict[str, tuple[Severity, str, str]] = {
    "reverse-shell": (
        Severity.HIGH,
        "a reverse shell",
        r"/dev/(?:tcp|udp)/\d|\b(?:ba)?sh -i\b.*[<>]&|\bnc(?:at)?\b[^\n]*\s-[ec]\s"
        r"|socat\b[^\n]*exec:|python[0-9.]* -c\s*['\"]import (?:socket|pty)"
        r"|pty\.spawn\(|perl -e[^\n]*socket|php -r[^\n]*fsockopen",
    ),
    "download-exec": (
        Severity.HIGH,
        "a download piped into a shell",
        r"\b(?:curl|wget)\b[^\n|;]*\|\s*(?:ba|da|z)?sh\b|base64 -d[^\n|]*\|\s*(?:ba)?sh\b",
    ),
    "exploit-payload": (
        Severity.HIGH,
        "an exploit payload",
        r"\$\{jndi:(?:ldaps?|rmi|dns|iiop|http)://|\(\)\s*\{\s*:;\s*\};"
        r"|(?:\.\./){3,}etc/(?:passwd|shadow)",
    ),
    "post-exploitation": (
        Severity.HIGH,
        "a post-exploitation tool",
        r"\b(?:linpeas|linenum|linux-exploit-suggester|pspy(?:32|64)?|mimikatz|meterpreter"
        r"|metasploit|cobaltstrike|cobalt strike|sliver-(?:client|server)|ligolo"
        r"|chisel (?:client|server))\b",
    ),
    "miner": (
        Severity.HIGH,
        "a cryptocurrency miner",
        r"\bxmrig\b|stratum\+(?:tcp|ssl)://|\bminerd\b|\bcpuminer\b|\bnanopool\b",
    ),
    "scanner": (
        Severity.MEDIUM,
        "a vulnerability or port scanner",
        r"\b(?:sqlmap|nikto|nmap|masscan|zgrab|gobuster|dirbuster|wfuzz|ffuf|nuclei"
        r"|hydra|wpscan)\b",
    ),
    "k8s-discovery": (
        Severity.MEDIUM,
        "Kubernetes discovery or container-escape tooling",
        r"\bkubectl\b[^\n]*\b(?:auth can-i|get secrets?)\b|\b(?:amicontained|deepce|peirates"
        r"|kube-hunter|cdk evaluate)\b|cat [^\n]*serviceaccount/token",
    ),
}
LOG_PATTERNS = {pid: expr for pid, (_sev, _what, expr) in ATTACK_PATTERNS.items()}
MAX_LINES = 20


def attack_tooling(facts: Facts, rule: Rule) -> Iterator[Hit]:
    table: dict[str, tuple[Severity, str, str]] = dict(rule.params["patterns"])
    by_pattern: dict[str, list[LogHit]] = {}
    for hit in facts.log_hits:
        if hit.pattern in table:
            by_pattern.setdefault(hit.pattern, []).append(hit)
    for pid, hits in by_pattern.items():
        severity, what, _expr = table[pid]
        members = sorted({h.member for h in hits})
        ev = tuple(
            Evidence(h.member, h.line, "log", "the log line", h.text) for h in hits[:MAX_LINES]
        )
        values = {
            "what": what,
            "count": len(hits),
            "where": ", ".join(members[:3]) + (" …" if len(members) > 3 else ""),
            "example": hits[0].text[:160],
        }
        attrs = {"pattern": pid, "lines": len(hits), "members": members}
        yield Hit(f"pattern:{pid}", values, ev, None, attrs, severity)


RULES = (
    Rule(
        "logs.attack-tooling",
        Severity.HIGH,
        Strength.HEURISTIC,
        "{count} log line(s) mention {what}: {example}",
        "Lines of the container's logs (runtime stdout/stderr, the Kubernetes API's copy, "
        "log files inside the target) match a pattern of {what}. In an application's log "
        "this usually means someone tried it against the service or ran it inside.",
        attack_tooling,
        params={"patterns": ATTACK_PATTERNS},
        caveats="A log that records requests records attackers' attempts too: a scanner's "
        "user agent is an attempt, not a compromise. Security tools and tutorials mention "
        "these names legitimately. Only the lines the bundle holds are searched.",
    ),
)
