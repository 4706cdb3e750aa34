"""YARA scanning of a captured bundle (pure: reads the bundle, never the target).

    rules = rules.compile_rules(Path("rules/"))   # RulesError (file:line) before anything
    result = bundle.scan_bundle(Path("b.exv"), rules)   # ScanResult: matches, skips
    sidecar.save_result(Path("b.exv"), result)    # <bundle>.yara.json beside it, atomic

``rules`` and ``engine`` use the engine, YARA-X's Python binding (``yara_x``;
nothing is ever run in a shell); ``model`` and ``sidecar`` do not, so the
timeline and findings read scan results without loading it. Which members are
scanned is :data:`forensics.scan.bundle.SCAN_PREFIXES` (docs/scan.md).
"""
