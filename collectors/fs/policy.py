"""Which file contents a capture copies (`--files`), and which files are logs."""

from __future__ import annotations

from dataclasses import dataclass

from forensics.inventory.paths import wants_copy as inventory_metadata

POLICIES = ("none", "changed", "small", "all")
SMALL_LIMIT = 1 << 20
DEFAULT_MAX_FILE_SIZE = 64 << 20
#: under `changed`, small files below these are copied even if unchanged
CONFIG_DIRS = (b"/etc/", b"/tmp/", b"/var/", b"/root/", b"/home/")
#: where orchestrators mount secrets (Kubernetes service-account tokens and
#: secret volumes, Docker/Swarm secrets)
SECRET_DIRS = (b"/var/run/secrets/", b"/run/secrets/")
LOG_SUFFIXES = (b".log", b".out", b".err", b".txt", b".jsonl", b".json")


@dataclass(frozen=True, slots=True)
class CopyPolicy:
    mode: str = "changed"
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    log_dirs: tuple[bytes, ...] = (b"/var/log/",)
    #: keep mounted secrets (service-account tokens, Docker/K8s secrets) out of
    #: the bundle: hashed, never copied, unless --no-redact
    redact: bool = True

    def __post_init__(self) -> None:
        if self.mode not in POLICIES:
            raise ValueError(f"unknown --files policy {self.mode!r}; use one of {POLICIES}")
        if self.max_file_size < 0:
            raise ValueError("--max-file-size must not be negative")

    def is_secret(self, path: bytes) -> bool:
        """A mounted secret whose content must not be copied while redacting."""
        return self.redact and path.startswith(SECRET_DIRS)

    def is_log(self, path: bytes) -> bool:
        """Text logs inside the target: under /var/log, or *.log etc. in a log dir."""
        for d in self.log_dirs:
            if path.startswith(d):
                if d == b"/var/log/":
                    return True
                # the main process's cwd: only log-looking files directly in it
                rest = path[len(d) :]
                return b"/" not in rest and rest.endswith(LOG_SUFFIXES)
        return False

    def wants(self, path: bytes, size: int, changed: bool | None) -> bool:
        """Whether the policy asks for this regular file's content (before the size cap)."""
        if self.is_log(path):
            return True
        if self.mode == "all":
            return True
        if self.mode == "none":
            return False
        if changed:
            return True
        # package metadata (dpkg/apk/rpm databases, dist-info, package.json, JARs):
        # copied whatever its directory, each kind up to its own size cap
        if inventory_metadata(path, size):
            return True
        if self.mode == "small":
            return size <= SMALL_LIMIT
        return size <= SMALL_LIMIT and path.startswith(CONFIG_DIRS)
