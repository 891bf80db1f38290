"""Parsing and structural validation of v1beta2 manifest files."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.manifests import crds, documents
from meshplane.manifests.objects import ManifestError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "echo"

ROUTER = """\
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: r
    httpRoute:
      match: {prefix: /}
      action: {weightedTargets: [{virtualNodeRef: {name: a}, weight: 100}]}
"""


def problems_of(text: str, namespace: str | None = "demos") -> list[str]:
    with pytest.raises(ManifestError) as caught:
        documents.parse(text, "f.yaml", namespace)
    return caught.value.problems


def test_every_example_file_parses_unchanged() -> None:
    """The walkthrough's files are accepted as they are."""
    kinds = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "workloads.yaml":
            continue
        (doc,) = documents.parse(path.read_text(), path.name, "demos")
        kinds[path.name] = (doc.obj.kind, doc.obj.namespace, doc.obj.name)
    assert kinds == {
        "demos-mesh.yaml": ("Mesh", "", "demos"),
        "namespace.yaml": ("Namespace", "", "demos"),
        "vn-echo-backend-blue.yaml": ("VirtualNode", "demos", "vn-echo-backend-blue"),
        "vn-echo-backend-green.yaml": ("VirtualNode", "demos", "vn-echo-backend-green"),
        "vn-echo-frontend-blue.yaml": ("VirtualNode", "demos", "vn-echo-frontend-blue"),
        "vr-echo-backend.yaml": ("VirtualRouter", "demos", "vr-echo-backend"),
        "vs-echo-backend-service.yaml": ("Service", "demos", "vs-echo-backend"),
        "vs-echo-backend.yaml": ("VirtualService", "demos", "vs-echo-backend"),
    }


def test_multi_document_indexes_skip_empty_documents() -> None:
    """Documents are numbered from 1 and empty `---` sections do not count."""
    text = "---\n" + ROUTER + "---\n---\n" + ROUTER.replace("name: vr", "name: vr2")
    parsed = documents.parse(text, "f.yaml", None)
    assert [(d.index, d.obj.name, d.obj.namespace) for d in parsed] == [
        (1, "vr", "default"),
        (2, "vr2", "default"),
    ]
    assert parsed[1].where == "f.yaml document 2"


def test_unknown_field_wrong_type_and_range_name_document_and_path() -> None:
    """Each structural fault names the document index, the field path and the rule."""
    text = (
        ROUTER.replace("{prefix: /}", "{prefix: /, color: red}")
        .replace("weight: 100", 'weight: "100"')
        .replace("  - name: r\n", "  - name: r\n    priority: 2000\n")
    )
    assert problems_of("---\n" + ROUTER + "---\n" + text) == [
        "f.yaml document 2: spec.routes[0].httpRoute.match.color: unknown field (allowed: "
        "headers, method, prefix, scheme, path, queryParameters, port)",
        "f.yaml document 2: spec.routes[0].httpRoute.action.weightedTargets[0].weight: "
        "must be an integer, got string",
        "f.yaml document 2: spec.routes[0].priority: value 2000 is above the maximum 1000",
    ]


def test_missing_required_and_enum() -> None:
    """Required members and enums of the CRD are enforced."""
    text = ROUTER.replace("protocol: http}", "protocol: udp}").replace("name: r\n", "x: r\n")
    assert problems_of(text) == [
        "f.yaml document 1: spec.listeners[0].portMapping.protocol: "
        "'udp' is not one of grpc, http, http2, tcp",
        "f.yaml document 1: spec.routes[0].x: unknown field (allowed: name, grpcRoute, httpRoute, "
        "http2Route, tcpRoute, priority)",
        "f.yaml document 1: spec.routes[0].name: is required",
    ]


def test_malformed_yaml_is_reported_after_the_documents_before_it() -> None:
    """A YAML syntax error names the document it is in, with line and column."""
    assert problems_of(ROUTER + "---\na: [\n") == [
        "f.yaml document 2: malformed YAML: expected the node content, but found "
        "'<stream end>' at line 13 column 1"
    ]


def test_yaml_nested_deeper_than_the_parser_is_malformed_not_a_crash() -> None:
    """YAML nested past the parser's recursion limit is reported as malformed, after the rest."""
    assert problems_of(ROUTER + "---\n" + "[" * 5000 + "]" * 5000 + "\n") == [
        "f.yaml document 2: malformed YAML: nested too deeply"
    ]


HELM_STREAM = """\
---
# Source: colorapp/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: colorapp}
---
# Source: colorapp/templates/rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: colorapp-reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: colorapp-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: colorapp-reader}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: colorapp, namespace: demos}
spec: {replicas: 2, template: {spec: {containers: [{name: app, image: colorapp}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: xray}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {COLOR: blue}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: colorapp}
---
"""


def test_kinds_kubernetes_runs_are_skipped_with_one_line_each() -> None:
    """A helm-style stream applies its App Mesh kinds and skips the rest, each with its line."""
    parsed = documents.read(HELM_STREAM + ROUTER, "-", "demos")
    assert [(d.index, d.obj.kind, d.obj.name) for d in parsed.documents] == [
        (9, "VirtualRouter", "vr")
    ]
    assert [(s.index, s.line()) for s in parsed.skipped] == [
        (
            1,
            "serviceaccount/colorapp skipped: access control is Kubernetes' business; "
            "meshplane's local mode needs none",
        ),
        (
            2,
            "clusterrole.rbac.authorization.k8s.io/colorapp-reader skipped: access control is "
            "Kubernetes' business; meshplane's local mode needs none",
        ),
        (
            3,
            "clusterrolebinding.rbac.authorization.k8s.io/colorapp-reader skipped: access "
            "control is Kubernetes' business; meshplane's local mode needs none",
        ),
        (
            4,
            "deployment.apps/colorapp skipped: workloads are Kubernetes' business; in local "
            "mode use a Workload",
        ),
        (
            5,
            "daemonset.apps/xray skipped: workloads are Kubernetes' business; in local mode "
            "use a Workload",
        ),
        (
            6,
            "ingress.networking.k8s.io/front skipped: ingress is Kubernetes' business; in local "
            "mode a VirtualGateway's Workload publishes the gateway",
        ),
        (
            7,
            "configmap/settings skipped: configuration is Kubernetes' business; in local mode "
            "put it in the Workload's env",
        ),
        (
            8,
            "servicemonitor.monitoring.coreos.com/colorapp skipped: not an App Mesh kind; "
            "meshplane applies the appmesh.k8s.aws kinds, Namespace and Service",
        ),
    ]
    assert documents.parse(HELM_STREAM, "-", "demos") == []


def test_a_wrong_app_mesh_document_beside_skipped_kinds_is_still_refused() -> None:
    """Skipping is for other groups' kinds: an unknown App Mesh kind or a bad spec still fails."""
    typo = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNod\nmetadata: {name: x}\n"
    bad_spec = ROUTER.replace("weight: 100", "weight: lots")
    assert problems_of(HELM_STREAM + typo + "---\n" + bad_spec) == [
        "f.yaml document 9: kind: kind VirtualNod is not supported; meshplane accepts Namespace, "
        "Service, Mesh, VirtualNode, VirtualRouter, VirtualService, VirtualGateway, GatewayRoute, "
        "BackendGroup",
        "f.yaml document 10: spec.routes[0].httpRoute.action.weightedTargets[0].weight: "
        "must be an integer, got string",
    ]


def test_an_app_mesh_group_kind_kubernetes_runs_is_refused_with_what_to_run_instead() -> None:
    """A Deployment that claims the App Mesh group is a mistake: refused, naming the alternative."""
    text = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Deployment\nmetadata: {name: x}\n"
    assert problems_of(text) == [
        "f.yaml document 1: kind: kind Deployment is not supported; meshplane accepts Namespace, "
        "Service, Mesh, VirtualNode, VirtualRouter, VirtualService, VirtualGateway, GatewayRoute, "
        "BackendGroup (meshplane does not run workloads from manifests: its local runtime "
        "supervises them, and a VirtualNode's podSelector matches their labels)"
    ]


def test_wrong_api_version_and_header_fields() -> None:
    """The apiVersion must be the kind's and only the Kubernetes top-level fields are allowed."""
    assert problems_of(
        "apiVersion: appmesh.k8s.aws/v1beta1\nkind: Mesh\nmetadata: {name: m}\n"
    ) == [
        "f.yaml document 1: apiVersion: Mesh must be appmesh.k8s.aws/v1beta2, got "
        "'appmesh.k8s.aws/v1beta1'"
    ]
    text = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {}\nspecs: {}\n"
    assert problems_of(text) == [
        "f.yaml document 1: specs: unknown field "
        "(allowed: apiVersion, kind, metadata, spec, status)",
        "f.yaml document 1: metadata.name: is required",
    ]
    assert problems_of("- a\n- b\n") == [
        "f.yaml document 1: a manifest must be an object, got list"
    ]


def test_namespace_flag_fills_in_and_must_agree() -> None:
    """`-n` is the default namespace; a different metadata.namespace is refused, as kubectl does."""
    (doc,) = documents.parse(ROUTER, "f.yaml", "demos")
    assert doc.obj.namespace == "demos"
    text = ROUTER.replace("{name: vr}", "{name: vr, namespace: other}")
    (doc,) = documents.parse(text, "f.yaml", None)
    assert doc.obj.namespace == "other"
    assert problems_of(text, "demos") == [
        "f.yaml document 1: metadata.namespace: the namespace from the provided object 'other' "
        "does not match the namespace 'demos'; pass --namespace=other to apply it"
    ]


def test_status_and_server_metadata_from_get_output_are_accepted() -> None:
    """Re-applying `get -o yaml` output works: status and server-set metadata are ignored."""
    text = ROUTER.replace("{name: vr}", "{name: vr, uid: u-1, generation: 3}") + "status: {x: 1}\n"
    (doc,) = documents.parse(text, "f.yaml", "demos")
    assert (doc.obj.name, doc.obj.status, doc.obj.uid) == ("vr", {}, "")


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("virtualnode", "VirtualNode"),
        ("virtualnodes", "VirtualNode"),
        ("vn", "VirtualNode"),
        ("VirtualRouter", "VirtualRouter"),
        ("virtualservices.appmesh.k8s.aws", "VirtualService"),
        ("mesh", "Mesh"),
        ("meshes", "Mesh"),
        ("ns", "Namespace"),
        ("svc", "Service"),
        ("gr", "GatewayRoute"),
    ],
)
def test_kind_words(word: str, kind: str) -> None:
    """Singular, plural, short and group-qualified names all resolve."""
    info = crds.lookup(word)
    assert info is not None
    assert info.kind == kind


def test_unknown_kind_word() -> None:
    """An unknown word resolves to nothing."""
    assert crds.lookup("deployment") is None


def test_workload_documents_are_left_to_meshplane_up() -> None:
    """apply passes over meshplane.dev/v1alpha1 Workloads: they are processes, not objects."""
    text = (EXAMPLES / "workloads.yaml").read_text()
    assert documents.parse(text, "workloads.yaml", "demos") == []
