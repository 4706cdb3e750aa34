"""YARA scanning of a captured bundle (pure: reads the bundle, never the target).

    rules = compile_rules(Path("rules/"))        # RulesError (file:line) before anything else
    result = scan_bundle(Path("b.exv"), rules)   # ScanResult: matches, skips, what was scanned
    save_result(Path("b.exv"), result)           # the sidecar <bundle>.yara.json, atomic

The engine is YARA-X's Python binding (``yara_x``); nothing is ever run in a
shell. Which members are scanned is :data:`SCAN_PREFIXES` (docs/scan.md).
"""

from __future__ import annotations

from forensics.scan.bundle import SCAN_PREFIXES, scan_bundle, scanned_member
from forensics.scan.engine import ChunkScanner, ScanLimits
from forensics.scan.model import Match, ScanResult, ScanSkip, StringHit
from forensics.scan.rules import CompiledRules, RulesError, compile_rules
from forensics.scan.sidecar import load_result, result_path, save_result

__all__ = [
    "SCAN_PREFIXES",
    "ChunkScanner",
    "CompiledRules",
    "Match",
    "RulesError",
    "ScanLimits",
    "ScanResult",
    "ScanSkip",
    "StringHit",
    "compile_rules",
    "load_result",
    "result_path",
    "save_result",
    "scan_bundle",
    "scanned_member",
]
