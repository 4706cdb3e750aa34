"""Process memory as ELF core files: the pure layout (no live-system I/O)."""
