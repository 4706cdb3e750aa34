"""The inventory's data: packages, executables, claims, coverage. Plain dataclasses.

These are what the SBOM writers, the table and (later) the replay TUI read;
nothing here knows where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forensics.inventory.golang import GoBuildInfo
from forensics.inventory.rust import RustPackage


@dataclass(slots=True)
class FileClaim:
    """A package's statement that it installed ``path`` (with a digest when known)."""

    path: str
    algo: str | None = None  # "md5" | "sha1" | "sha256"
    digest: str | None = None


@dataclass(slots=True)
class Package:
    """One software component, from package metadata or embedded in a binary."""

    ecosystem: str  # deb apk rpm pypi npm maven golang cargo generic
    name: str
    version: str
    purl: str | None
    source: str  # the metadata file or binary it was found in
    kind: str = "library"  # library | application | operating-system
    arch: str | None = None
    licenses: list[str] = field(default_factory=list)
    supplier: str | None = None
    description: str | None = None
    homepage: str | None = None
    files: list[FileClaim] = field(default_factory=list)
    #: purl-like keys of packages this one depends on (Go modules, crates)
    depends: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)  # every source it was seen in
    ref: str = ""  # unique reference, set by the inventory

    @property
    def key(self) -> str:
        """What makes two sightings the same package."""
        return self.purl or f"{self.ecosystem}:{self.name}@{self.version}"


@dataclass(slots=True)
class ElfInfo:
    """What the ELF analysis found in one executable or shared object."""

    elf_class: int
    endian: str
    e_type: str  # ET_EXEC, ET_DYN, ...
    kind: str  # executable | shared object | relocatable | core | other
    machine: str
    interpreter: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    soname: str | None = None
    build_id: str | None = None
    go_build_id: str | None = None
    pie: bool = False
    linking: str = "static"  # static | dynamic | static-pie
    section_headers: bool = True
    stripped: bool = False
    debug_info: bool = False
    language: str = "unknown"  # Go | Rust | C/C++ | unknown
    language_evidence: str = ""
    entropy: float | None = None
    packing: str | None = None
    comment: list[str] = field(default_factory=list)
    go: GoBuildInfo | None = None
    go_error: str | None = None
    rust: list[RustPackage] | None = None
    rust_error: str | None = None
    package_note: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # parts that could not be read

    @property
    def is_program(self) -> bool:
        """Executables and shared objects: what the coverage counts."""
        return self.kind in ("executable", "shared object")


@dataclass(slots=True)
class Claim:
    ref: str  # the package's ref
    how: str  # path | path+hash | hash | embedded
    detail: str = ""


@dataclass(slots=True)
class Executable:
    """An ELF file of the snapshot or the executable of a running process."""

    path: str
    origin: str  # filesystem | process
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    sha1: str | None = None
    mode: str | None = None
    setuid: bool = False
    setgid: bool = False
    #: True: written since the container started (overlay upper layer); None: unknown
    changed: bool | None = None
    added_inferred: str | None = None  # why it is taken as added after start
    deleted: bool = False
    memfd: bool = False
    pids: list[int] = field(default_factory=list)  # processes running or mapping it
    member: str | None = None  # the bundle member its data came from
    elf: ElfInfo | None = None
    unparseable: str | None = None
    claims: list[Claim] = field(default_factory=list)
    hash_mismatch: list[str] = field(default_factory=list)  # refs claiming the path, other bytes
    #: origin "memory": identified in a process's captured core (an image mapped from a
    #: memfd): member, address, what its mapped headers and notes say
    memory: dict[str, Any] | None = None

    @property
    def accounted(self) -> bool:
        return bool(self.claims)

    @property
    def counted(self) -> bool:
        """In the coverage: executables and shared objects, and unparseable ELF files
        (not an image seen in memory: its file, when recovered, is counted)."""
        if self.origin == "memory":
            return False
        return self.unparseable is not None or (self.elf is not None and self.elf.is_program)


@dataclass(slots=True)
class Coverage:
    total: int
    accounted: int
    unaccounted: list[str]
    added_after_start: list[str]
    modified: list[str]  # claimed by path, but the bytes differ from the package's
    unparseable: list[str]

    @property
    def percent(self) -> float | None:
        return None if self.total == 0 else round(100.0 * self.accounted / self.total, 1)


@dataclass(slots=True)
class Inventory:
    target: dict[str, Any]
    manifest: dict[str, Any]
    os: dict[str, str]
    packages: list[Package]
    executables: list[Executable]
    coverage: Coverage
    #: blind spots: metadata present but unread, unsupported, not copied, unparseable
    problems: list[str] = field(default_factory=list)
    bundle: str = ""

    def package(self, ref: str) -> Package | None:
        for p in self.packages:
            if p.ref == ref:
                return p
        return None
