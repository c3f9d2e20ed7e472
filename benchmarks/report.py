"""docs/benchmarks.md is written in sections, one per benchmark, each between its own markers."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def write_section(output: Path, start: str, end: str, section: str) -> None:
    """Replace the text between `start` and `end` (markers included in `section`), or append it."""
    text = output.read_text() if output.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores visible",
        "memory": f"{int(memory) / 1024**2:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load average at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
