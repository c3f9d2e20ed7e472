"""serving/requirements.lock.txt (the serving image) pins every package it shares with the platform's lock
(requirements.lock.txt) at the same version."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def test_the_serving_lock_agrees_with_the_main_lock():
    main, serving = pins(ROOT / "requirements.lock.txt"), pins(ROOT / "serving" / "requirements.lock.txt")
    assert len(serving) > 50 and len(main) > 200
    shared = main.keys() & serving.keys()
    assert {"bentoml", "pandas", "protobuf", "python-dateutil"} <= shared
    differ = {name: (main[name], serving[name]) for name in sorted(shared) if main[name] != serving[name]}
    assert differ == {}, f"main lock vs serving lock: {differ}"


def test_the_deploy_check_dependency_is_pinned_in_the_lock():
    assert pins(ROOT / "requirements.lock.txt").get("kubernetes-validate")
    assert '"kubernetes-validate==' in (ROOT / "pyproject.toml").read_text()
