"""Strict schema validation of what Argo CD deploys (part of `make test` through tests/deploy/test_schemas.py;
`make deploy-check` runs it with the rest of tests/deploy; `python -m tests.deploy.schema_check` prints a report).

- Every kustomize tree an Argo CD Application names (argocd/apps/*.yaml: spec.source(s).path in our repository),
  and k8s/secrets rendered from its *.env.example files in a temporary copy, with `kubectl kustomize`; each object
  is validated against the Kubernetes JSON schemas of the oldest and the newest Kubernetes the platform supports
  (KUBERNETES_VERSIONS), the "strict" schemas of the `kubernetes-validate` package: an unknown field is an error.
- The Argo CD Applications and AppProject (argocd/) and the prometheus-operator objects (ServiceMonitor,
  PrometheusRule) against the JSON schemas generated from their CRDs, which the npm packages
  @kubernetes-models/argo-cd and @kubernetes-models/prometheus-operator carry (CRD_PACKAGES: fetched once with
  `npm pack` into SCHEMA_CACHE, checked against their pinned sha512). Those schemas do not forbid unknown fields
  (CRDs rarely do): every object schema with `properties` is made strict (additionalProperties: false) unless it
  says otherwise, so a misspelt field is an error there too.
- A kind without a schema is an error, except those in NO_SCHEMA (said in the report).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "argocd"
SECRETS = ROOT / "k8s" / "secrets"

#: The oldest and the newest Kubernetes the platform supports (kube-prometheus-stack needs >= 1.25; the k3s of
#: deploy/versions.env is 1.34). kubernetes-validate 1.37.0 has schemas for 1.25 to 1.37.
KUBERNETES_VERSIONS = ("1.25", "1.34")

#: npm package -> (version, sha512 integrity of its tarball, what it was generated from). The newest releases of
#: both packages ship compiled validators only (no JSON schema, and they accept unknown fields): these are the
#: newest that carry the CRDs' JSON schemas as data.
CRD_PACKAGES = {
    "@kubernetes-models/argo-cd": (
        "2.5.0",
        "sha512-VwNH19QfRZZlElSu9J3w9ZG+SfrLl+6FVR43hpEpVAaxn0kYXrjbEOOsCnfWNh35xvGu5wb62f8uVzhU+fSmoQ==",
        "Argo CD v2.10.8 CRDs",
    ),
    "@kubernetes-models/prometheus-operator": (
        "4.0.0",
        "sha512-3d2aR/ezuAa0KLsbG618n1QUf8kQP0UV42FNGR6/+sec7/URCZqzOjy6sDBtHob3d/1/pBdov3PqUDK/kl9sFQ==",
        "prometheus-operator v0.57.0 CRDs",
    ),
}

#: (apiVersion, kind) -> (npm package, the file in it that holds the schema).
CRD_SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): ("@kubernetes-models/argo-cd", "argoproj.io/v1alpha1/Application.js"),
    ("argoproj.io/v1alpha1", "AppProject"): ("@kubernetes-models/argo-cd", "argoproj.io/v1alpha1/AppProject.js"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "@kubernetes-models/prometheus-operator",
        "monitoring.coreos.com/v1/ServiceMonitor.js",
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): (
        "@kubernetes-models/prometheus-operator",
        "monitoring.coreos.com/v1/PrometheusRule.js",
    ),
}

#: Fields the packaged schemas lack, that the real CRDs have and the platform uses: (apiVersion, kind) -> [(path of
#: an object schema, field, its schema)]. `helm.skipSchemaValidation` is in Argo CD's Application CRD since 2.x (in
#: v2.14.11, not in v2.10.8) and in the 3.x the platform installs (ARGOCD_VERSION). The AppProject's
#: `description`s: the package's generator strips every `description` key, the CRD's properties of that name too.
EXTRA_FIELDS = {
    ("argoproj.io/v1alpha1", "Application"): [
        (("spec", "source", "helm"), "skipSchemaValidation", {"type": "boolean"}),
        (("spec", "sources", "[]", "helm"), "skipSchemaValidation", {"type": "boolean"}),
    ],
    ("argoproj.io/v1alpha1", "AppProject"): [
        (("spec",), "description", {"type": "string"}),
        (("spec", "roles", "[]"), "description", {"type": "string"}),
    ],
}

#: Kinds no schema is available for: reported, not validated. Traefik's Middleware (k3s bundles Traefik; its
#: CRDs are not in a package here).
NO_SCHEMA = {("traefik.io/v1alpha1", "Middleware")}

#: Where the npm tarballs are kept (outside the repository).
SCHEMA_CACHE = Path(
    os.environ.get("MLOPS_DEPLOY_SCHEMA_CACHE") or Path.home() / ".cache" / "mlops" / "deploy-schemas"
).expanduser()

K8S_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#"
K8S_OBJECT_META_REF = f"{K8S_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class ToolMissingError(RuntimeError):
    """kubectl or npm is not installed (or the npm registry cannot be reached with nothing cached)."""


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    checked: int = 0
    unchecked: list[str] = field(default_factory=list)

    def extend(self, other: Report) -> None:
        self.errors += other.errors
        self.checked += other.checked
        self.unchecked += other.unchecked


# --- the Kubernetes schemas (kubernetes-validate's strict ones) ---------------------------------------------------


def _k8s_schema_dir(version: str) -> Path:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = base / f"v{version}.0-local-strict"
    if not path.is_dir():
        have = sorted(p.name for p in base.iterdir() if p.name.endswith("-local-strict"))
        raise ValueError(f"kubernetes-validate has no strict schemas for Kubernetes {version} (it has: {have})")
    return path


@cache
def _k8s_definitions(version: str) -> Resource:
    return Resource.from_contents(json.loads((_k8s_schema_dir(version) / "_definitions.json").read_text()))


@cache
def _k8s_validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    # kubernetes-validate's file names: rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _k8s_schema_dir(version) / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = Registry().with_resources([(K8S_DEFINITIONS_ID, _k8s_definitions(version))])
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- the CRD schemas (npm packages) -------------------------------------------------------------------------------


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch_packages(cache_dir: Path = SCHEMA_CACHE) -> dict[str, Path]:
    """package -> its tarball in cache_dir, fetched with `npm pack` when missing; integrity checked."""
    tarballs = {}
    for package, (version, integrity, _) in CRD_PACKAGES.items():
        name = f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
        tarball = cache_dir / name
        if not tarball.is_file() or _integrity(tarball) != integrity:
            npm = shutil.which("npm")
            if npm is None:
                raise ToolMissingError(f"npm is not installed: it fetches {package}@{version} (make deploy-schemas)")
            cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
                result = subprocess.run(
                    [npm, "pack", "--silent", "--pack-destination", scratch, f"{package}@{version}"],
                    capture_output=True,
                    text=True,
                    timeout=180,
                    cwd=scratch,
                )
                fetched = Path(scratch) / name
                if result.returncode != 0 or not fetched.is_file():
                    raise ToolMissingError(f"npm pack {package}@{version} failed: {result.stderr.strip()[-500:]}")
                if _integrity(fetched) != integrity:
                    raise RuntimeError(f"{package}@{version}: integrity {_integrity(fetched)}, expected {integrity}")
                fetched.replace(tarball)
        tarballs[package] = tarball
    return tarballs


def _schema_literal(source: str, where: str) -> dict:
    """The `const schema = {...};` JSON literal of a @kubernetes-models model file."""
    marker = "const schema = "
    start = source.find(marker)
    if start < 0:
        raise ValueError(f"{where}: no schema literal")
    schema, _ = json.JSONDecoder().raw_decode(source, start + len(marker))
    return schema


def make_strict(schema):
    """additionalProperties: false in every object schema that lists its properties and says nothing else."""
    if isinstance(schema, dict):
        for value in schema.values():
            make_strict(value)
        open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in schema and not open_ended:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for value in schema:
            make_strict(value)
    return schema


def _at(schema: dict, path: Iterable[str]) -> dict:
    for step in path:
        schema = schema["items"] if step == "[]" else schema["properties"][step]
    return schema


def _replace_refs(schema, old: str, new: str):
    if isinstance(schema, dict):
        if schema.get("$ref") == old:
            schema["$ref"] = new
        for value in schema.values():
            _replace_refs(value, old, new)
    elif isinstance(schema, list):
        for value in schema:
            _replace_refs(value, old, new)


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    package, member = CRD_SCHEMAS[(api_version, kind)]
    tarball = fetch_packages()[package]
    with tarfile.open(tarball) as archive:
        source = archive.extractfile(f"package/{member}").read().decode()
    schema = copy.deepcopy(_schema_literal(source, f"{package}/{member}"))
    for path, name, field_schema in EXTRA_FIELDS.get((api_version, kind), []):
        target = _at(schema, path)
        assert name not in target["properties"], f"{kind}: {name} is in the packaged schema: drop it from EXTRA_FIELDS"
        target["properties"][name] = field_schema
    make_strict(schema)
    # metadata: the strict ObjectMeta of the newest Kubernetes validated.
    version = KUBERNETES_VERSIONS[-1]
    _replace_refs(schema, OBJECT_META_REF, K8S_OBJECT_META_REF)
    registry = Registry().with_resources([(K8S_DEFINITIONS_ID, _k8s_definitions(version))])
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- checking -----------------------------------------------------------------------------------------------------


def _errors(validator: jsonschema.protocols.Validator, obj: dict) -> Iterator[str]:
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        yield f"{path}: {error.message}"


def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{namespace}{meta.get('name')}"


def check_objects(objects: Iterable[dict], source: str) -> Report:
    """Validate objects (rendered from `source`): Kubernetes kinds at every KUBERNETES_VERSIONS, CRDs once."""
    report = Report()
    for obj in objects:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        where = f"{source}: {_name(obj)}"
        if (api_version, kind) in CRD_SCHEMAS:
            report.checked += 1
            validator = _crd_validator(api_version, kind)
            report.errors += [f"{where} ({kind} CRD schema): {e}" for e in _errors(validator, obj)]
            continue
        validators = {v: _k8s_validator(v, api_version, kind) for v in KUBERNETES_VERSIONS}
        if all(v is None for v in validators.values()):
            if (api_version, kind) in NO_SCHEMA:
                report.unchecked.append(f"{where} ({api_version}: no schema available)")
            else:
                report.errors.append(f"{where}: no schema for {api_version} {kind} (not a Kubernetes kind?)")
            continue
        report.checked += 1
        for version, validator in validators.items():
            if validator is None:
                report.errors.append(f"{where}: {api_version} {kind} does not exist in Kubernetes {version}")
                continue
            report.errors += [f"{where} (Kubernetes {version}): {e}" for e in _errors(validator, obj)]
    return report


def kustomize(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ToolMissingError("kubectl is not installed (kubectl kustomize renders the manifests)")
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _load_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def argocd_objects(argocd: Path = ARGOCD) -> dict[Path, list[dict]]:
    """argocd/root.yaml and argocd/apps/*.yaml."""
    return {path: _load_yaml(path) for path in [argocd / "root.yaml", *sorted((argocd / "apps").glob("*.yaml"))]}


def app_trees(argocd: Path = ARGOCD, root: Path = ROOT) -> list[Path]:
    """The directories in this repository the Applications deploy (spec.source(s).path), once each."""
    ours = _load_yaml(argocd / "root.yaml")[0]["spec"]["source"]["repoURL"]
    paths = []
    for docs in argocd_objects(argocd).values():
        for doc in docs:
            if doc.get("kind") != "Application":
                continue
            spec = doc["spec"]
            for source in spec.get("sources") or [spec["source"]]:
                if source.get("repoURL") == ours and "path" in source and root / source["path"] not in paths:
                    paths.append(root / source["path"])
    return paths


def render_tree(path: Path) -> list[dict]:
    """A kustomize tree rendered, or the YAML files of a plain directory (argocd/apps)."""
    if (path / "kustomization.yaml").is_file():
        return kustomize(path)
    return [doc for file in sorted(path.glob("*.yaml")) for doc in _load_yaml(file)]


def render_secrets(secrets: Path = SECRETS) -> list[dict]:
    """k8s/secrets in a temporary copy whose *.env files are the committed *.env.example files."""
    with tempfile.TemporaryDirectory() as scratch:
        copy_dir = Path(scratch) / "secrets"
        shutil.copytree(secrets, copy_dir, ignore=shutil.ignore_patterns("*.env"))
        for example in copy_dir.glob("*.env.example"):
            shutil.copy(example, copy_dir / example.name.removesuffix(".example"))
        return kustomize(copy_dir)


def check_all(root: Path = ROOT) -> Report:
    report = Report()
    argocd = root / "argocd"
    for path, docs in argocd_objects(argocd).items():
        report.extend(check_objects(docs, str(path.relative_to(root))))
    for tree in app_trees(argocd, root):
        if tree == argocd / "apps":
            continue  # checked above, file by file
        report.extend(check_objects(render_tree(tree), str(tree.relative_to(root))))
    report.extend(check_objects(render_secrets(root / "k8s" / "secrets"), "k8s/secrets (from *.env.example)"))
    return report


def main(argv: list[str]) -> int:
    if "--fetch" in argv:
        for package, tarball in fetch_packages().items():
            print(f"{package}@{CRD_PACKAGES[package][0]} ({CRD_PACKAGES[package][2]}): {tarball}")
        return 0
    try:
        report = check_all()
    except ToolMissingError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    for line in report.unchecked:
        print(f"not validated: {line}")
    for line in report.errors:
        print(f"ERROR {line}")
    versions = " and ".join(KUBERNETES_VERSIONS)
    print(f"{report.checked} objects validated (Kubernetes {versions}, CRD schemas): {len(report.errors)} error(s)")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
