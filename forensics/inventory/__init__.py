"""Software inventory of a captured target: packages, executables, coverage, SBOMs.

Pure (no live I/O): everything here reads a bundle or data taken from one.
``build_inventory(bundle_path)`` (forensics.inventory.analyze) is the entry
point; the parsers, the ELF analysis and the SBOM writers are one module each.
This package's import stays light: the capture imports forensics.inventory.paths.
"""
