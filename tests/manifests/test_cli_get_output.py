"""`get -o name|jsonpath=…|custom-columns=…`, `-l` and `--sort-by` against a live server."""

from __future__ import annotations

import json

import pytest

from .live import EXAMPLES, Cli, Result

pytestmark = pytest.mark.integration

NODES = """\
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {{name: {name}, namespace: demos, labels: {labels}}}
spec:
  awsName: {name}
  podSelector: {{matchLabels: {{app: {name}}}}}
  listeners: [{{portMapping: {{port: 80, protocol: http}}}}]
  serviceDiscovery: {{dns: {{hostname: {name}}}}}
"""

ARN = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualNode/"


@pytest.fixture
def nodes(cli: Cli) -> Cli:
    """The demos mesh with three labelled virtual nodes, applied out of name order."""
    setup = (EXAMPLES / "namespace.yaml").read_text() + "---\n"
    setup += (EXAMPLES / "demos-mesh.yaml").read_text()
    for name, labels in [
        ("vn-c", "{app: web, tier: back}"),
        ("vn-a", "{app: web, tier: front, canary: 'yes'}"),
        ("vn-b", "{app: db}"),
    ]:
        setup += "---\n" + NODES.format(name=name, labels=labels)
    assert cli("apply", "-f", "-", stdin=setup).code == 0
    return cli


def test_output_name_prints_resource_slash_name(nodes: Cli) -> None:
    """-o name prints kubectl's resource/name, one per line, for lists and single objects."""
    assert nodes.ok("get", "vn", "-n", "demos", "-o", "name", "--sort-by=.metadata.name") == (
        "virtualnode.appmesh.k8s.aws/vn-a\n"
        "virtualnode.appmesh.k8s.aws/vn-b\n"
        "virtualnode.appmesh.k8s.aws/vn-c\n"
    )
    assert nodes.ok("get", "mesh", "demos", "-o", "name") == "mesh.appmesh.k8s.aws/demos\n"
    assert nodes.ok("get", "ns", "-o", "name") == "namespace/demos\n"


def test_output_jsonpath_subset(nodes: Cli) -> None:
    """Field paths, [*], range/end and "\\n" literals give kubectl's output, no newline added."""
    assert (
        nodes.ok(
            "get",
            "vn",
            "-n",
            "demos",
            "--sort-by",
            ".metadata.name",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        )
        == "vn-a vn-b vn-c"
    )
    assert (
        nodes.ok(
            "get",
            "vn",
            "vn-a",
            "-n",
            "demos",
            "-o",
            "jsonpath={.spec.awsName}/{.metadata.name}",
        )
        == "vn-a/vn-a"
    )
    ranged = nodes.ok(
        "get",
        "vn",
        "-n",
        "demos",
        "--sort-by=.metadata.name",
        "-o",
        'jsonpath={range .items[*]}{.metadata.name}={.status.virtualNodeARN}{"\\n"}{end}',
    )
    assert ranged == f"vn-a={ARN}vn-a\nvn-b={ARN}vn-b\nvn-c={ARN}vn-c\n"
    metadata = nodes.ok("get", "vn", "vn-a", "-n", "demos", "-o", "jsonpath={.metadata}")
    assert json.loads(metadata)["labels"] == {"app": "web", "tier": "front", "canary": "yes"}
    assert "creationEpoch" not in json.loads(metadata)  # internal, as in -o json


def test_output_custom_columns(nodes: Cli) -> None:
    """custom-columns=HEADER:PATH,… prints kubectl's aligned table, <none> for missing fields."""
    out = nodes.ok(
        "get",
        "vn",
        "-n",
        "demos",
        "--sort-by=.metadata.name",
        "-o",
        "custom-columns=NAME:.metadata.name,ARN:.status.virtualNodeARN,CANARY:.metadata.labels.canary",
    )
    width = len(ARN) + len("vn-a") + 3
    assert out.splitlines() == [
        "NAME   " + "ARN".ljust(width) + "CANARY",
        "vn-a   " + (ARN + "vn-a").ljust(width) + "yes",
        "vn-b   " + (ARN + "vn-b").ljust(width) + "<none>",
        "vn-c   " + (ARN + "vn-c").ljust(width) + "<none>",
    ]


def test_label_selectors_filter_the_list(nodes: Cli) -> None:
    """-l KEY=VALUE[,…], -l KEY, -l KEY!=VALUE and -l !KEY select as kubectl's."""

    def names(selector: str) -> str:
        return nodes.ok(
            "get",
            "vn",
            "-n",
            "demos",
            "-l",
            selector,
            "--sort-by=.metadata.name",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        )

    assert names("app=web") == "vn-a vn-c"
    assert names("app=web,tier=front") == "vn-a"
    assert names("canary") == "vn-a"
    assert names("app!=web") == "vn-b"
    assert names("!tier") == "vn-b"
    assert nodes("get", "vn", "-n", "demos", "-l", "app=none") == Result(
        0, "", "No resources found in demos namespace.\n"
    )


def test_sort_by_orders_the_default_table(nodes: Cli) -> None:
    """--sort-by reorders the ordinary table too: by a label, the node without it first."""
    out = nodes.ok("get", "vn", "-n", "demos", "--sort-by={.metadata.labels.tier}")
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", "vn-b", "vn-c", "vn-a"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            ["-o", "jsonpath={.items[?(@.kind)]}"],
            "error: unsupported JSONPath '{.items[?(@.kind)]}' at '[?(@.kind)]': only .field, "
            "[*] and [N] are supported\n",
        ),
        (
            ["-o", "jsonpath={range .items[*]}{.metadata.name}"],
            "error: {range} without {end} in JSONPath template "
            "'{range .items[*]}{.metadata.name}'\n",
        ),
        (
            ["-o", "custom-columns=NAME"],
            'error: unexpected custom-columns spec: "NAME", expected <header>:<json-path-expr>\n',
        ),
        (
            ["--sort-by", "metadata.name"],
            "error: unsupported JSONPath 'metadata.name': a field path starts with '.'\n",
        ),
        (
            ["-o", "jsonpath="],
            'error: unable to match a printer suitable for the output format "jsonpath="\n',
        ),
        (
            ["-l", "env in (a,b)"],
            'error: unable to parse requirement: invalid label key "env in (a" in "env in (a,b)"\n',
        ),
    ],
)
def test_bad_templates_exit_1_with_one_line(cli: Cli, arguments: list[str], error: str) -> None:
    """A template, spec or selector outside the supported subset exits 1 with one line."""
    assert cli("get", "vn", "-n", "demos", *arguments) == Result(1, "", error)


def test_name_and_selector_together_are_refused(cli: Cli) -> None:
    """kubectl's rule: a name cannot be given with -l."""
    assert cli("get", "vn", "vn-a", "-l", "app=web") == Result(
        1, "", "error: name cannot be provided when a selector is specified\n"
    )
