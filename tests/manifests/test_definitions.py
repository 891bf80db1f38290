"""The generated v1beta2 CRDs: structural schemas derived from meshplane's own manifest schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from meshplane.cli.main import cli
from meshplane.manifests import crds, definitions, schema

ROOT = Path(__file__).resolve().parents[2]
CHART_CRDS = ROOT / "charts" / "meshplane" / "crds"
EXAMPLES = ROOT / "examples" / "echo"


def _structural(node: dict[str, Any], path: str, found: list[str]) -> None:
    """Kubernetes' structural-schema rules, the part a generator can get wrong."""
    if node.get("x-kubernetes-preserve-unknown-fields") is not True and "type" not in node:
        found.append(f"{path}: no type")
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        if properties and "additionalProperties" in node:
            found.append(f"{path}: properties and additionalProperties")
        for name in node.get("required", []):
            if name not in properties:
                found.append(f"{path}: required {name} is not a property")
        if node.get("required", []) != sorted(set(node.get("required", []))):
            found.append(f"{path}: required is not sorted and unique")
        for name, child in properties.items():
            _structural(child, f"{path}.{name}", found)
        if "additionalProperties" in node:
            _structural(node["additionalProperties"], f"{path}.*", found)
    elif kind == "array":
        if "items" not in node:
            found.append(f"{path}: array without items")
        else:
            _structural(node["items"], f"{path}[]", found)
    elif kind not in {"string", "integer", "boolean", None}:
        found.append(f"{path}: unknown type {kind}")
    for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in node and high in node and node[low] > node[high]:
            found.append(f"{path}: {low} above {high}")
    for value in node.get("enum", []):
        if not isinstance(value, str):
            found.append(f"{path}: enum value {value!r} is not a string")


def _validate(node: dict[str, Any], value: Any, path: str, found: list[str]) -> None:
    """A small OpenAPI checker: types, required, enums and bounds (what the API server checks)."""
    kind = node.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            found.append(f"{path}: not an integer")
            return
        if value < node.get("minimum", value) or value > node.get("maximum", value):
            found.append(f"{path}: out of range")
        return
    if kind in types and not isinstance(value, types[kind]):
        found.append(f"{path}: not a {kind}")
        return
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: not in enum")
    if kind == "string" and not node.get("minLength", 0) <= len(value) <= node.get(
        "maxLength", len(value)
    ):
        found.append(f"{path}: length out of range")
    if kind == "object":
        found.extend(
            f"{path}.{name}: required" for name in node.get("required", []) if name not in value
        )
        for name, item in value.items():
            child = node.get("properties", {}).get(name) or node.get("additionalProperties")
            if child is not None:
                _validate(child, item, f"{path}.{name}", found)
    if kind == "array":
        for index, item in enumerate(value):
            _validate(node["items"], item, f"{path}[{index}]", found)


@pytest.mark.parametrize("kind", definitions.KINDS)
def test_every_crd_is_a_structural_v1_definition(kind: str) -> None:
    """apiextensions v1, one served+stored v1beta2 version, status subresource, typed everywhere."""
    crd = yaml.safe_load(definitions.render(kind))
    assert crd == definitions.definition(kind)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    info = crds.BY_KIND[kind]
    assert crd["metadata"]["name"] == f"{info.plural}.appmesh.k8s.aws"
    assert crd["spec"]["group"] == "appmesh.k8s.aws"
    assert crd["spec"]["names"]["kind"] == kind
    assert crd["spec"]["names"]["plural"] == info.plural
    assert crd["spec"]["scope"] == ("Cluster" if kind == "Mesh" else "Namespaced")
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1beta2", True, True)
    assert version["subresources"] == {"status": {}}
    found: list[str] = []
    _structural(version["schema"]["openAPIV3Schema"], kind, found)
    assert found == []


def test_printer_columns_are_the_controllers() -> None:
    """ARN from the status and AGE, as the real CRDs print them; BackendGroup has no ARN."""
    columns = {
        kind: [
            (c["name"], c["jsonPath"])
            for c in definitions.definition(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        ]
        for kind in definitions.KINDS
    }
    assert columns["VirtualNode"] == [
        ("ARN", ".status.virtualNodeARN"),
        ("AGE", ".metadata.creationTimestamp"),
    ]
    assert columns["Mesh"][0] == ("ARN", ".status.meshARN")
    assert columns["BackendGroup"] == [("AGE", ".metadata.creationTimestamp")]


def test_ranges_and_required_fields_come_from_the_manifest_schema() -> None:
    """The healthCheck range and required members are the ones admission enforces."""
    root = definitions.definition("VirtualNode")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    listener = root["properties"]["spec"]["properties"]["listeners"]["items"]
    check = listener["properties"]["healthCheck"]
    assert check["properties"]["intervalMillis"] == {
        "type": "integer",
        "minimum": 5000,
        "maximum": 300000,
    }
    assert check["required"] == [
        "healthyThreshold",
        "intervalMillis",
        "protocol",
        "timeoutMillis",
        "unhealthyThreshold",
    ]
    assert listener["required"] == ["portMapping"]
    assert root["properties"]["spec"] == definitions.schema(crds.BY_KIND["VirtualNode"].spec)


def test_open_structs_keep_unknown_fields() -> None:
    """A part meshplane keeps uninterpreted is preserved, not pruned, by the API server."""
    assert definitions.schema(schema.ANY_OBJECT) == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_the_walkthrough_manifests_pass_the_generated_schemas() -> None:
    """Every example v1beta2 document validates against its CRD's schema."""
    checked = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not document or document.get("kind") not in definitions.KINDS:
                continue
            crd = definitions.definition(document["kind"])
            found: list[str] = []
            _validate(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], document, "", found)
            assert found == [], path.name
            checked += 1
    assert checked == 6


def test_the_schema_refuses_what_admission_refuses() -> None:
    """An out-of-range interval and a missing portMapping fail the generated schema too."""
    crd = definitions.definition("VirtualNode")
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bad = {
        "spec": {
            "listeners": [
                {"healthCheck": {"intervalMillis": 10, "protocol": "http"}},
            ]
        }
    }
    found: list[str] = []
    _validate(root, bad, "", found)
    assert found == [
        ".spec.listeners[0].portMapping: required",
        ".spec.listeners[0].healthCheck.healthyThreshold: required",
        ".spec.listeners[0].healthCheck.timeoutMillis: required",
        ".spec.listeners[0].healthCheck.unhealthyThreshold: required",
        ".spec.listeners[0].healthCheck.intervalMillis: out of range",
    ]


def test_the_chart_holds_exactly_the_generated_files() -> None:
    """charts/meshplane/crds is `make crds` output byte for byte: regenerate after schema edits."""
    expected = {definitions.file_name(kind): definitions.render(kind) for kind in definitions.KINDS}
    actual = {path.name: path.read_text(encoding="utf-8") for path in CHART_CRDS.iterdir()}
    assert actual == expected


def test_crds_command_prints_and_writes(tmp_path: Path) -> None:
    """`meshplane crds` prints seven documents; `-o DIR` writes one file per kind."""
    runner = CliRunner()
    printed = runner.invoke(cli, ["crds"])
    assert printed.exit_code == 0
    documents = list(yaml.safe_load_all(printed.output))
    assert [d["spec"]["names"]["kind"] for d in documents] == list(definitions.KINDS)
    written = runner.invoke(cli, ["crds", "-o", str(tmp_path / "out")])
    assert written.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        definitions.file_name(kind) for kind in definitions.KINDS
    )
    assert written.output.count("wrote ") == 7
