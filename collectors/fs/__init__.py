"""Read-only acquisition of a target's filesystem through /proc/<pid>/root."""
