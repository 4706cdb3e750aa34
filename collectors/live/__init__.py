"""Live views of a running target for interactive triage (no bundle is written).

``processes`` samples the target's PID namespace (CPU from the difference
between two samples), ``sockets`` lists its sockets with their owners,
``logs`` tails the runtime's stdout/stderr log. All read /proc and host log
files only; nothing here imports textual.
"""
