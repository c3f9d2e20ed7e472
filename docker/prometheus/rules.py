"""Writes docker/prometheus/rules.yml, the plain Prometheus rules file of the compose platform, from the
PrometheusRule of Kubernetes (k8s/base/monitoring/prometheusrule.yaml): its `spec` is a rules file.

    .venv/bin/python docker/prometheus/rules.py          # rewrite it
    .venv/bin/python docker/prometheus/rules.py --check  # exit 1 when it differs (tests/system checks too)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "k8s/base/monitoring/prometheusrule.yaml"
TARGET = ROOT / "docker/prometheus/rules.yml"
HEADER = (
    "# GENERATED from k8s/base/monitoring/prometheusrule.yaml (its spec) by docker/prometheus/rules.py:\n"
    "# edit the PrometheusRule, then run `.venv/bin/python docker/prometheus/rules.py`.\n"
)


def render() -> str:
    spec = yaml.safe_load(SOURCE.read_text())["spec"]
    return HEADER + yaml.safe_dump(spec, sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run .venv/bin/python docker/prometheus/rules.py")
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
