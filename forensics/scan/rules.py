"""Compiling the examiner's YARA rules: one file, or every ``*.yar``/``*.yara`` under a
directory, each in a namespace of its own (its path relative to the directory).

A rule that does not compile is a :class:`RulesError` of one line naming the
rule's file, line and column, raised before anything is read or captured.
Includes are disabled: a rule set is read from the files given, nothing else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yara_x

from forensics.errors import ExuviaError

RULE_SUFFIXES = (".yar", ".yara")
#: a rule file larger than this is refused (rule sets are text, never this big)
MAX_RULE_FILE = 32 << 20
_WHERE = re.compile(r"-->\s*(?P<origin>.+?):(?P<line>\d+):(?P<col>\d+)")


class RulesError(ExuviaError):
    """The rules cannot be read or do not compile."""


@dataclass(frozen=True, slots=True)
class RuleFile:
    name: str  # relative to the rules directory (or the file's own name)
    sha256: str
    size: int


@dataclass(frozen=True)
class CompiledRules:
    """The compiled rules and what they were compiled from (for the record)."""

    rules: yara_x.Rules
    source: str  # the path given, as given
    files: tuple[RuleFile, ...]
    count: int  # rules compiled

    @property
    def sha256(self) -> str:
        """One hash of the rule set: of each file's name and SHA-256, in name order."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.name):
            h.update(f"{f.name}\0{f.sha256}\n".encode())
        return h.hexdigest()

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rules": self.count,
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in self.files],
            "engine": engine_version(),
        }


def engine_version() -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return f"yara-x {version('yara-x')}"
    except Exception:  # noqa: BLE001 - metadata missing: the engine still works
        return "yara-x"


def _rule_files(path: Path) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(path.name, path)]
    if path.is_dir():
        found = sorted(
            p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file()
        )
        if not found:
            raise RulesError(f"no *.yar or *.yara rule files under {path}")
        return [(p.relative_to(path).as_posix(), p) for p in found]
    raise RulesError(f"cannot read the rules {path}: no such file or directory")


def _read(p: Path) -> bytes:
    try:
        with p.open("rb") as f:
            data = f.read(MAX_RULE_FILE + 1)
    except OSError as err:
        raise RulesError(f"cannot read the rule file {p}: {err.strerror}") from err
    if len(data) > MAX_RULE_FILE:
        raise RulesError(f"the rule file {p} is larger than {MAX_RULE_FILE >> 20} MiB; refused")
    return data


def _one_line(message: str, fallback: str) -> str:
    """yara-x's multi-line diagnostic as ``FILE:LINE:COL: what (detail)``."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    head = lines[0] if lines else "does not compile"
    head = re.sub(r"^error(\[\w+\])?:\s*", "", head)
    m = _WHERE.search(message)
    where = f"{m['origin']}:{m['line']}:{m['col']}" if m else fallback
    detail = ""
    for ln in lines[1:]:
        # the caret line carries the explanation: "|      ^ expecting ..."
        caret = re.match(r"^\|?\s*\^+\s*(.+)$", ln.lstrip("| "))
        if caret:
            detail = caret.group(1)
            break
    text = f"{where}: {head}" + (f" ({detail})" if detail else "")
    return text.replace("\n", " ")


def compile_rules(path: Path) -> CompiledRules:
    """Compile the rule file ``path`` or every rule file under the directory ``path``."""
    compiler = yara_x.Compiler()
    compiler.enable_includes(False)
    files: list[RuleFile] = []
    for name, p in _rule_files(path):
        data = _read(p)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RulesError(f"{p}: not UTF-8 text (byte {err.start})") from None
        files.append(RuleFile(name, hashlib.sha256(data).hexdigest(), len(data)))
        compiler.new_namespace(name)
        try:
            compiler.add_source(text, origin=str(p))
        except yara_x.CompileError as err:
            raise RulesError("rules do not compile: " + _one_line(str(err), str(p))) from None
    try:
        rules = compiler.build()
    except yara_x.CompileError as err:  # pragma: no cover - add_source reports first
        raise RulesError("rules do not compile: " + _one_line(str(err), str(path))) from None
    count = sum(1 for _ in rules)
    if count == 0:
        raise RulesError(f"{path}: no rules in it")
    return CompiledRules(rules, str(path), tuple(files), count)
