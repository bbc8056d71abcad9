#!/usr/bin/env python3
"""Renders, lints and validates the Helm chart offline, for Tests/BackupIntegrationTests/HelmChartTests.swift.

    helm_check.py render --chart DIR [--values FILE]... [--set-json JSON] [--release R] [--namespace N]
    helm_check.py parent --chart DIR --parent DIR [--values FILE]...   (the chart as a dependency of PARENT)
    helm_check.py lint --chart DIR [--values FILE]...
    helm_check.py yaml --file FILE   (a YAML file as JSON, parsed as the renderings are, to compare with them)

`render` and `parent` print one JSON object: {"objects": [{"template", "object"}…], "validation": [{"kind", "name",
"schema", "error"}…], "values": the values given}. Every object of a core kind is validated with kubernetes-validate against the Kubernetes
1.30 schemas it ships (strict: unknown fields are errors); ServiceMonitor and PrometheusRule against the
prometheus-operator CRDs kept in Tests/Support/helm/crds (strict too); any other kind is an error ("no schema").
A chart that does not render (values refused by values.schema.json, a `fail` in a template) exits 1 with Helm's
message on stderr. A missing Python package exits 3 with the command that installs it.

Rendering and linting use helm-python-sdk: Helm's own Go SDK (v4) as a shared library, no helm binary, no network.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile

KUBERNETES_VERSION = "1.30.0"
INSTALL = (
    "install the chart's test tools: scripts/install-deps.sh (or: python3 -m pip install "
    "'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0' 'check-jsonschema==0.39.0' PyYAML)"
)

try:
    import helm_python as helm
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as missing:  # The test turns exit 3 into a failure that says how to install.
    print(f"helm_check.py: {missing}: {INSTALL}", file=sys.stderr)
    sys.exit(3)

CRD_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helm", "crds")


def load_values(files: list[str], set_json: list[str]) -> dict:
    """The values files merged in order (later wins, maps merged deeply), as `helm -f a -f b` merges them."""
    merged: dict = {}

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    for name in files:
        with open(name, encoding="utf-8") as handle:
            merge(merged, helm.values_from_yaml(handle.read()) or {})
    for text in set_json:
        merge(merged, json.loads(text))
    return merged


def strict(schema):
    """The CRD's structural schema, refusing unknown fields where the API server would drop or refuse them."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas() -> dict:
    """(apiVersion, kind) -> the strict openAPIV3Schema of every served version of the kept CRDs."""
    schemas = {}
    for name in sorted(os.listdir(CRD_DIRECTORY)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(CRD_DIRECTORY, name), encoding="utf-8") as handle:
            crd = yaml.safe_load(handle)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schemas[(f"{group}/{version['name']}", kind)] = (name, schema)
    return schemas


def validate(objects: list[dict]) -> list[dict]:
    crds = crd_schemas()
    results = []
    for entry in objects:
        obj = entry["object"]
        kind, api_version = obj.get("kind", "?"), obj.get("apiVersion", "?")
        result = {"kind": kind, "name": (obj.get("metadata") or {}).get("name", "?"), "error": None}
        if (api_version, kind) in crds:
            file, schema = crds[(api_version, kind)]
            result["schema"] = f"CRD {file}"
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
            if errors:
                result["error"] = "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
        else:
            result["schema"] = f"kubernetes-validate {KUBERNETES_VERSION} strict"
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                result["error"] = f"no schema for {api_version} {kind}"
            except kubernetes_validate.ValidationError as error:
                result["error"] = f"{'/'.join(map(str, error.path))}: {error.message}"
        results.append(result)
    return results


def render(chart_dir: str, values: dict, release: str, namespace: str) -> list[dict]:
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    objects = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append({"template": template, "object": document})
    return objects


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["render", "parent", "lint", "yaml"])
    parser.add_argument("--chart")
    parser.add_argument("--file")
    parser.add_argument("--parent")
    parser.add_argument("--values", action="append", default=[])
    parser.add_argument("--set-json", action="append", default=[])
    parser.add_argument("--release", default="visual")
    parser.add_argument("--namespace", default="visual")
    arguments = parser.parse_args()
    if arguments.command == "yaml":
        # PyYAML parses both this file and the rendered objects: equal data compares equal (AlertRulesTests).
        with open(arguments.file, encoding="utf-8") as handle:
            print(json.dumps(yaml.safe_load(handle)))
        return 0
    if not arguments.chart:
        parser.error("--chart is required")
    values = load_values(arguments.values, arguments.set_json)
    try:
        if arguments.command == "lint":
            report = helm.lint(
                arguments.chart, values, strict=True, namespace=arguments.namespace,
                kube_version=f"v{KUBERNETES_VERSION}")
            print(json.dumps(report))
            return 0
        if arguments.command == "parent":
            # The application's chart with this chart as its dependency, as an operator lays it out.
            with tempfile.TemporaryDirectory(prefix="helm-parent-") as workspace:
                chart_dir = os.path.join(workspace, os.path.basename(os.path.normpath(arguments.parent)))
                shutil.copytree(arguments.parent, chart_dir)
                shutil.copytree(arguments.chart, os.path.join(chart_dir, "charts", "contingency"))
                objects = render(chart_dir, values, arguments.release, arguments.namespace)
        else:
            objects = render(arguments.chart, values, arguments.release, arguments.namespace)
    except helm.HelmError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"objects": objects, "validation": validate(objects), "values": values}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
