"""Process memory acquisition: /proc/PID/maps and /proc/PID/mem, read live.

Never ptrace-attached, never signalled, never stopped: pages are read with
pread(2) on /proc/PID/mem while the process runs (docs/memory.md).
"""

#: the ``--memory`` modes (collectors.memory.maps says which mappings each captures);
#: here, so a command line can offer them without importing the collector
MODES = ("anon", "all")
