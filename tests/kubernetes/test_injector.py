"""The pod injector's contract, as the appmesh-controller's /mutate-v1-pod had it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from meshplane.k8s import injecting
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject

MESH_REF = {"name": "demos", "uid": "mesh-uid"}
CONFIG = injecting.InjectorConfig(region="eu-west-1", xds_host="10.0.0.9", xds_port=15010)


def _node(name: str, app: str, mesh_ref: dict[str, str] | None = MESH_REF) -> ManifestObject:
    spec: dict[str, Any] = {
        "awsName": name,
        "podSelector": {"matchLabels": {"app": app}},
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": app}},
    }
    if mesh_ref is not None:
        spec["meshRef"] = mesh_ref
    return ManifestObject("VirtualNode", "demos", name, spec=spec, uid=f"{name}-uid")


def _catalog(*members: ManifestObject) -> Catalog:
    mesh = ManifestObject("Mesh", "", "demos", spec={"awsName": "demos"}, uid="mesh-uid")
    namespace = ManifestObject(
        "Namespace", "", "demos", labels={"mesh": "demos", injecting.INJECT: "enabled"}
    )
    return Catalog([mesh, namespace, *members])


def _pod(labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"generateName": "echo-", "labels": labels, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "echo:1"}]},
    }


def _decide(pod: dict[str, Any], catalog: Catalog, labels: dict[str, str] | None = None):
    ns_labels = labels if labels is not None else catalog.namespace_labels("demos")
    return injecting.inject(pod, "demos", ns_labels, catalog, CONFIG)


def _patched(pod: dict[str, Any], decision: injecting.Decision) -> dict[str, Any]:
    """Apply the decision's JSON Patch (only whole-member ``add`` ops are emitted)."""
    result = json.loads(json.dumps(pod))
    for op in decision.patch:
        assert op["op"] == "add"
        *parents, last = op["path"].strip("/").split("/")
        target = result
        for part in parents:
            target = target[part]
        target[last] = op["value"]
    return result


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_enabled_pod_gets_envoy_and_proxyinit_with_the_app_mesh_contract():
    """An enabled namespace's matching pod gets `proxyinit` and `envoy` with every APPMESH_* key."""
    catalog = _catalog(_node("vn-blue", "blue"))
    decision = _decide(_pod({"app": "blue"}), catalog)
    assert decision.allowed
    pod = _patched(_pod({"app": "blue"}), decision)
    init = pod["spec"]["initContainers"][0]
    assert init["name"] == "proxyinit"
    assert init["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    assert _env(init) == {
        "APPMESH_START_ENABLED": "1",
        "APPMESH_IGNORE_UID": "1337",
        "APPMESH_ENVOY_INGRESS_PORT": "15000",
        "APPMESH_ENVOY_EGRESS_PORT": "15001",
        "APPMESH_APP_PORTS": "80",
        "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
        "APPMESH_EGRESS_IGNORED_PORTS": "22",
        "APPMESH_ENABLE_IPV6": "1",
    }
    app, envoy = pod["spec"]["containers"]
    assert app == {"name": "app", "image": "echo:1"}
    assert envoy["name"] == "envoy"
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"
    assert envoy["securityContext"] == {"runAsUser": 1337}
    assert envoy["ports"] == [{"containerPort": 9901, "name": "stats", "protocol": "TCP"}]
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 9901}
    assert envoy["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}}
    assert envoy["lifecycle"]["preStop"] == {"exec": {"command": ["sh", "-c", "sleep 20"]}}
    env = _env(envoy)
    assert env["APPMESH_RESOURCE_ARN"] == "mesh/demos/virtualNode/vn-blue"
    assert env["APPMESH_VIRTUAL_NODE_NAME"] == "mesh/demos/virtualNode/vn-blue"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["ENVOY_ADMIN_ACCESS_PORT"] == "9901"
    assert env["APPMESH_PLATFORM_K8S_POD_UID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert pod["spec"]["securityContext"] == {"fsGroup": 1337}


def test_the_envoy_bootstrap_names_the_node_and_dials_meshplane_xds():
    """The inline bootstrap has the node id, the intercepted layout's marker and the xDS address."""
    catalog = _catalog(_node("vn-blue", "blue"))
    pod = _patched(_pod({"app": "blue"}), _decide(_pod({"app": "blue"}), catalog))
    envoy = pod["spec"]["containers"][1]
    assert envoy["command"] == ["envoy"]
    args = envoy["args"]
    bootstrap = json.loads(args[args.index("--config-yaml") + 1])
    assert bootstrap["node"] == {
        "id": "mesh/demos/virtualNode/vn-blue",
        "cluster": "mesh/demos/virtualNode/vn-blue",
        "metadata": {"meshplane": {"bind": "0.0.0.0", "interception": "iptables"}},
    }
    assert bootstrap["admin"]["address"]["socket_address"] == {
        "address": "0.0.0.0",
        "port_value": 9901,
    }
    endpoint = bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    assert endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "10.0.0.9",
        "port_value": 15010,
    }


def test_annotations_override_ports_egress_resources_and_add_env():
    """ports, egressIgnoredIPs/Ports, cpu/memory requests and limits, sidecarEnv are honoured."""
    catalog = _catalog(_node("vn-blue", "blue"))
    annotations = {
        "appmesh.k8s.aws/ports": "8080,9090",
        "appmesh.k8s.aws/egressIgnoredIPs": "10.1.0.1",
        "appmesh.k8s.aws/egressIgnoredPorts": "3306",
        "appmesh.k8s.aws/cpuRequest": "50m",
        "appmesh.k8s.aws/memoryRequest": "64Mi",
        "appmesh.k8s.aws/cpuLimit": "1",
        "appmesh.k8s.aws/memoryLimit": "256Mi",
        "appmesh.k8s.aws/sidecarEnv": "DEBUG=1, AWS_REGION=mars-1",
    }
    pod = _pod({"app": "blue"}, annotations)
    patched = _patched(pod, _decide(pod, catalog))
    init_env = _env(patched["spec"]["initContainers"][0])
    assert init_env["APPMESH_APP_PORTS"] == "8080,9090"
    assert init_env["APPMESH_EGRESS_IGNORED_IP"] == "10.1.0.1"
    assert init_env["APPMESH_EGRESS_IGNORED_PORTS"] == "3306"
    envoy = patched["spec"]["containers"][1]
    assert envoy["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    names = [e["name"] for e in envoy["env"]]
    assert names[0] == "DEBUG"
    assert names.count("AWS_REGION") == 1
    assert _env(envoy)["AWS_REGION"] == "eu-west-1"


def test_enabled_without_a_match_is_refused_with_the_controllers_message():
    """No VirtualNode selecting an enabled pod refuses it, in the real injector's words."""
    decision = _decide(_pod({"app": "nobody"}), _catalog(_node("vn-blue", "blue")))
    assert decision == injecting.Decision(
        False, "sidecarInject enabled but no matching VirtualNode or VirtualGateway found"
    )


def test_a_node_without_mesh_ref_counts_as_no_match():
    """A VirtualNode not designated to a mesh yet does not inject (and enabled refuses)."""
    decision = _decide(_pod({"app": "blue"}), _catalog(_node("vn-blue", "blue", mesh_ref=None)))
    assert decision.allowed is False
    assert decision.message == injecting.NO_MATCH


def test_several_matching_nodes_are_refused():
    """Two VirtualNodes selecting one pod refuse it: the controller's words, the names, the fix."""
    catalog = _catalog(_node("vn-a", "blue"), _node("vn-b", "blue"))
    assert _decide(_pod({"app": "blue"}), catalog) == injecting.Decision(
        False,
        "found multiple matching VirtualNodes for pod: VirtualNodes demos/vn-a, demos/vn-b "
        "all select its labels app=blue; make their podSelectors select disjoint pods "
        "(or change the pod's labels)",
    )


def test_a_node_and_a_gateway_selecting_one_pod_are_named():
    """A pod selected by a VirtualNode and a VirtualGateway is refused naming both."""
    gateway = ManifestObject(
        "VirtualGateway",
        "demos",
        "vg-in",
        spec={"awsName": "vg-in", "meshRef": MESH_REF, "podSelector": {}},
    )
    decision = _decide(_pod({"app": "blue"}), _catalog(_node("vn-blue", "blue"), gateway))
    assert decision == injecting.Decision(
        False,
        "found matching VirtualNode and VirtualGateway for pod, expecting only one: "
        "VirtualNode demos/vn-blue and VirtualGateway demos/vg-in; narrow one of their "
        "podSelectors",
    )


GHOST_LABELS = {"mesh": "ghost", injecting.INJECT: "enabled"}
GHOST = (
    "failed to find mesh ghost: namespace demos is labelled mesh=ghost, but no Mesh ghost "
    "exists and no Mesh's namespaceSelector selects the namespace; create Mesh ghost with "
    "namespaceSelector.matchLabels {mesh: ghost}, or correct the namespace's mesh label"
)


def test_a_namespace_labelled_for_a_missing_mesh_refuses_its_pods():
    """mesh=ghost with no Mesh ghost (and none selecting the namespace) names label and mesh."""
    catalog = _catalog(_node("vn-blue", "blue", mesh_ref=None))
    decision = _decide(_pod({"app": "blue"}), catalog, GHOST_LABELS)
    assert decision == injecting.Decision(False, GHOST)


def test_the_missing_mesh_refusal_also_covers_auto_mode_pods_a_node_selects():
    """Auto mode: a pod a VirtualNode selects is refused too; one nothing selects is let in."""
    catalog = _catalog(_node("vn-blue", "blue", mesh_ref=None))
    labels = {**GHOST_LABELS, injecting.INJECT: "auto"}
    assert _decide(_pod({"app": "blue"}), catalog, labels) == injecting.Decision(False, GHOST)
    assert _decide(_pod({"app": "nobody"}), catalog, labels) == injecting.Decision(True)


def test_a_mesh_selecting_the_namespace_under_another_name_is_not_missing():
    """mesh=ghost is fine when some Mesh's namespaceSelector selects the namespace."""
    mesh = ManifestObject(
        "Mesh",
        "",
        "other",
        spec={"awsName": "other", "namespaceSelector": {"matchLabels": {"mesh": "ghost"}}},
        uid="other-uid",
    )
    catalog = _catalog(_node("vn-blue", "blue"), mesh)
    decision = _decide(_pod({"app": "blue"}), catalog, GHOST_LABELS)
    assert decision.allowed is True
    assert decision.patch


def _waiting(node: ManifestObject) -> ManifestObject:
    node.status = {
        "conditions": [
            {
                "type": "VirtualNodeActive",
                "status": "False",
                "reason": "Waiting",
                "message": "virtualService demos/vs-missing not found",
            }
        ]
    }
    return node


def test_a_node_that_is_not_active_refuses_the_pod_with_its_condition():
    """A VirtualNodeActive=False node refuses its pod, quoting the condition and where to look."""
    catalog = _catalog(_waiting(_node("vn-blue", "blue")))
    assert _decide(_pod({"app": "blue"}), catalog) == injecting.Decision(
        False,
        "VirtualNode demos/vn-blue selects this pod but is not Active (VirtualNodeActive=False, "
        "Waiting: virtualService demos/vs-missing not found); its Envoy would get no "
        "configuration. Fix what the condition says (kubectl describe virtualnode vn-blue "
        "-n demos), then create the pod again",
    )


def test_a_node_not_reconciled_yet_still_injects():
    """No condition yet (first reconcile pending) is not a refusal: the pod is injected."""
    node = _node("vn-blue", "blue")
    assert node.status == {}
    decision = _decide(_pod({"app": "blue"}), _catalog(node))
    assert decision.allowed is True
    assert [op["path"] for op in decision.patch] == [
        "/spec/initContainers",
        "/spec/containers",
        "/spec/securityContext",
    ]


@pytest.mark.parametrize(
    ("namespace_value", "annotation", "allowed", "patched"),
    [
        ("disabled", None, True, False),
        ("enabled", "disabled", True, False),
        ("disabled", "Enabled", False, False),
        ("auto", None, True, False),
    ],
)
def test_the_pod_annotation_overrides_the_namespace_label(
    namespace_value, annotation, allowed, patched
):
    """disabled skips; the pod annotation wins over the label; other values inject matches only."""
    catalog = _catalog(_node("vn-blue", "blue"))
    annotations = {injecting.INJECT: annotation} if annotation else {}
    decision = _decide(
        _pod({"app": "nobody"}, annotations), catalog, {injecting.INJECT: namespace_value}
    )
    assert decision.allowed is allowed
    assert bool(decision.patch) is patched


def test_injection_is_idempotent():
    """A pod that already has `envoy` and `proxyinit` is not changed again (fsGroup already set)."""
    catalog = _catalog(_node("vn-blue", "blue"))
    pod = _patched(_pod({"app": "blue"}), _decide(_pod({"app": "blue"}), catalog))
    assert _decide(pod, catalog) == injecting.Decision(True)


def test_a_gateway_pods_envoy_gets_the_image_and_the_gateway_arn():
    """A VirtualGateway pod's envoy container is re-imaged, bootstrapped, given the VG ARN."""
    gateway = ManifestObject(
        "VirtualGateway",
        "demos",
        "vg-ingress",
        spec={"awsName": "vg-ingress_demos", "meshRef": MESH_REF, "podSelector": {}},
        uid="vg-uid",
    )
    pod = {
        "metadata": {"labels": {"app": "gw"}},
        "spec": {"containers": [{"name": "envoy", "image": "aws-appmesh-envoy:v1.29"}]},
    }
    patched = _patched(pod, _decide(pod, _catalog(gateway)))
    (envoy,) = patched["spec"]["containers"]
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"
    assert _env(envoy)["APPMESH_RESOURCE_ARN"] == "mesh/demos/virtualGateway/vg-ingress_demos"
    assert "initContainers" not in patched["spec"]


IDENTITY = dataclasses.replace(
    CONFIG, xds_identity=True, xds_ca_pem="-----CA-----\n", xds_tls_port=15012
)


def _inject(pod: dict[str, Any], config: injecting.InjectorConfig) -> dict[str, Any]:
    catalog = _catalog(_node("vn-blue", "blue"))
    decision = injecting.inject(pod, "demos", catalog.namespace_labels("demos"), catalog, config)
    return _patched(pod, decision)


def test_identity_mounts_the_pod_token_and_ca_and_dials_tls_with_the_token_file():
    """xds_identity: projected token (meshplane, 3600 s), CA from the annotation, TLS ADS."""
    pod = _inject(_pod({"app": "blue"}, {"keep": "me"}), IDENTITY)
    assert pod["metadata"]["annotations"] == {
        "keep": "me",
        "meshplane.dev/xds-ca": "-----CA-----\n",
    }
    envoy = pod["spec"]["containers"][1]
    assert [m["mountPath"] for m in envoy["volumeMounts"]] == [
        "/var/run/secrets/meshplane",
        "/var/run/secrets/meshplane-ca",
    ]
    token, ca = pod["spec"]["volumes"]
    assert token["projected"]["sources"] == [
        {
            "serviceAccountToken": {
                "audience": "meshplane",
                "expirationSeconds": 3600,
                "path": "token",
            }
        }
    ]
    assert ca["downwardAPI"]["items"][0]["fieldRef"] == {
        "fieldPath": "metadata.annotations['meshplane.dev/xds-ca']"
    }
    args = envoy["args"]
    bootstrap = json.loads(args[args.index("--config-yaml") + 1])
    assert bootstrap["static_resources"]["clusters"] == []
    (service,) = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"]
    assert service["google_grpc"]["target_uri"] == "10.0.0.9:15012"
    assert service["google_grpc"]["credentials_factory_name"] == (
        "envoy.grpc_credentials.file_based_metadata"
    )


def test_native_sidecars_put_envoy_after_proxyinit_with_a_startup_probe():
    """native_sidecars: initContainers proxyinit, envoy (restartPolicy Always); app alone."""
    pod = _inject(_pod({"app": "blue"}), dataclasses.replace(CONFIG, native_sidecars=True))
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
    proxyinit, envoy = pod["spec"]["initContainers"]
    assert (proxyinit["name"], envoy["name"]) == ("proxyinit", "envoy")
    assert envoy["restartPolicy"] == "Always"
    assert envoy["startupProbe"] == {
        "httpGet": {"path": "/ready", "port": 9901},
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 120,
    }
    assert "lifecycle" not in envoy
    again = _inject(pod, dataclasses.replace(CONFIG, native_sidecars=True))
    assert again == pod  # idempotent: the native envoy counts as injected


def test_the_aws_image_keeps_its_own_bootstrap_and_gets_the_endpoint_and_ca():
    """An aws-appmesh-envoy sidecar: no command/args, APPMESH_XDS_ENDPOINT, CA at its roots path."""
    config = dataclasses.replace(
        CONFIG,
        sidecar_image="public.ecr.aws/appmesh/aws-appmesh-envoy:v1.34.13.3-prod",
        xds_ca_pem="-----CA-----\n",
    )
    envoy = _inject(_pod({"app": "blue"}), config)["spec"]["containers"][1]
    assert "command" not in envoy
    assert "args" not in envoy
    assert _env(envoy)["APPMESH_XDS_ENDPOINT"] == "10.0.0.9:15012"
    assert envoy["volumeMounts"][2] == {
        "name": "meshplane-xds-ca",
        "mountPath": "/etc/pki/tls/cert.pem",
        "subPath": "ca.pem",
        "readOnly": True,
    }


def test_a_gateway_pod_with_identity_gets_the_token_and_ca_its_bootstrap_reads():
    """A VirtualGateway's envoy, with xds_identity: the same volumes, mounts and CA annotation."""
    gateway = ManifestObject(
        "VirtualGateway",
        "demos",
        "vg-ingress",
        spec={"awsName": "vg-ingress_demos", "meshRef": MESH_REF, "podSelector": {}},
        uid="vg-uid",
    )
    pod = {
        "metadata": {"labels": {"app": "gw"}},
        "spec": {"containers": [{"name": "envoy", "image": "envoyproxy/envoy:v1.40.0"}]},
    }
    catalog = _catalog(gateway)
    decision = injecting.inject(pod, "demos", catalog.namespace_labels("demos"), catalog, IDENTITY)
    patched = _patched(pod, decision)
    (envoy,) = patched["spec"]["containers"]
    assert [m["name"] for m in envoy["volumeMounts"]] == ["meshplane-token", "meshplane-xds-ca"]
    assert [v["name"] for v in patched["spec"]["volumes"]] == [
        "meshplane-token",
        "meshplane-xds-ca",
    ]
    assert patched["metadata"]["annotations"] == {"meshplane.dev/xds-ca": "-----CA-----\n"}
    args = envoy["args"]
    bootstrap = json.loads(args[args.index("--config-yaml") + 1])
    assert bootstrap["node"]["metadata"] == {"meshplane": {"bind": "0.0.0.0"}}
    google = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]["google_grpc"]
    assert google["target_uri"] == "10.0.0.9:15012"
