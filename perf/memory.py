"""A benchmark process's own memory, from /proc/self/status (Linux).

`ru_maxrss` from `wait4` is not a child's own peak on Linux: `exec` carries the high-water mark
of the memory image it replaces into the new one, and `subprocess` starts a child by `vfork`
or `fork` of the launching process, so a child reports at least the launcher's peak resident
set (a child running `pass`, launched by a process that once held 2 GiB, reports 2 GiB).
`VmHWM` belongs to the process's memory image after `exec`, hence to the case alone.
"""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")


def status_bytes(field: str) -> int | None:
    """`VmRSS` (resident now) or `VmHWM` (peak since exec or the last reset) of this process,
    in bytes; None where /proc is not available."""
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return None


def reset_peak() -> None:
    """Reset this process's VmHWM to its current resident set."""
    Path("/proc/self/clear_refs").write_text("5")
