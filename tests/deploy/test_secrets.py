"""No credential is in git: Secrets are generated from gitignored *.env files (k8s/secrets), the
committed examples hold placeholders only, and no manifest, values file or script spells one out."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.deploy.conftest import K8S, ROOT, read_env_file

SECRETS = K8S / "secrets"
#: Everything this part of the tree ships: manifests, values, Applications, Dockerfiles, scripts.
SCANNED = ["k8s", "argocd", "docker", "deploy", ".dockerignore"]

CREDENTIAL_PATTERNS = {
    # a URL with a literal password (postgresql://user:secret@host); $(VAR) expansions are fine
    "password in a URL": re.compile(r"[a-z+]+://[^:/\s@]+:(?!\$\()[^@\s]+@"),
    # adminPassword: literal / AWS_SECRET_ACCESS_KEY=literal / "secretKey": "literal"
    "password value": re.compile(
        r"(?i)[\w.-]*(?:password|passwd|secret|token|access[_-]?key)[\w.-]*\"?\s*[:=]\s*\"?(?![$\{<?-]|\"?$)([^\s\"',}]+)"
    ),
    "AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
#: Values of the patterns above that are names or references, not credentials.
ALLOWED_VALUES = {
    "change-me",
    "admin",
    "postgresql-password",
    "admin-password",
    "admin-user",
    "WAREHOUSE_DB_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "DASHBOARD_DB_PASSWORD",
    "POSTGRES_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLOPS_ADMIN_TOKEN",
    "DAGSTER_DB_PASSWORD",
    "missing",
    "mlops-s3",
    "mlops-postgres",
    "grafana-admin",
    "mlops-admin-token",
    "dagster-postgresql-secret",
    "ui-basic-auth",
    "true",
    "false",
}
#: Patterns that also apply inside comments (a key: value pattern in prose is mostly a false alarm).
IN_COMMENTS = {"password in a URL", "AWS access key id", "private key"}


def git_ignored(paths: list[str]) -> set[str]:
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


def scanned_files():
    for name in SCANNED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        ignored = git_ignored([str(f.relative_to(ROOT)) for f in files]) if files else set()
        yield from (f for f in files if str(f.relative_to(ROOT)) not in ignored and "__pycache__" not in f.parts)


def test_the_real_env_files_are_ignored_and_the_examples_are_not():
    examples = sorted(SECRETS.glob("*.env.example"))
    assert len(examples) >= 5
    real = [str((SECRETS / e.name.removesuffix(".example")).relative_to(ROOT)) for e in examples]
    assert git_ignored(real) == set(real)
    assert git_ignored([str(e.relative_to(ROOT)) for e in examples]) == set()


def test_the_generator_reads_exactly_the_env_files_that_have_examples(secrets):
    kustomization = (SECRETS / "kustomization.yaml").read_text()
    envs = set(re.findall(r"^\s+- (\S+\.env)$", kustomization, re.MULTILINE))
    assert envs == {e.name.removesuffix(".example") for e in SECRETS.glob("*.env.example")}


def test_the_examples_hold_placeholders_only():
    for example in SECRETS.glob("*.env.example"):
        for key, value in read_env_file(example).items():
            assert value in {"change-me", "admin"}, f"{example.name}: {key} holds a value, not a placeholder"


def test_the_dockerignore_keeps_secrets_out_of_build_contexts():
    lines = set((ROOT / ".dockerignore").read_text().split())
    assert {"k8s", ".env", "**/*.env", ".venv", ".git"} <= lines


@pytest.mark.parametrize("name", sorted(CREDENTIAL_PATTERNS))
def test_no_file_spells_out_a_credential(name):
    pattern = CREDENTIAL_PATTERNS[name]
    found = []
    for path in scanned_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if name not in IN_COMMENTS and line.lstrip().startswith("#"):
                continue
            for match in pattern.finditer(line):
                value = match.group(match.lastindex or 0).strip("\"'")
                if value not in ALLOWED_VALUES and not value.startswith(("$", "{")):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, f"{name}:\n" + "\n".join(found)
