"""Hostile YAML is refused before it is expanded: aliases, oversized texts, document floods."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meshplane.client import Signer
from meshplane.manifests import documents, yamlsafety
from meshplane.manifests.objects import ManifestError

from .laughs import billion_laughs
from .live import Cli, Server

ALIAS_REFUSAL = (
    "lol.yaml document 1: YAML aliases are not accepted in manifests (*a0 at line 8 column "
    "14); write the value out (rule yaml-no-aliases)"
)


def problems_of(text: str, source: str = "lol.yaml") -> list[str]:
    with pytest.raises(ManifestError) as caught:
        documents.parse(text, source, None)
    return caught.value.problems


def test_billion_laughs_is_refused_at_the_first_alias() -> None:
    """The 609-byte alias bomb is one problem naming the alias, its place and the rule."""
    assert len(billion_laughs().encode()) == 609
    assert problems_of(billion_laughs()) == [ALIAS_REFUSAL]


def test_an_anchor_without_alias_is_accepted() -> None:
    """Anchors alone expand nothing: the document parses as if they were not there."""
    text = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: &n m}\n"
    (doc,) = documents.parse(text, "m.yaml", None)
    assert (doc.obj.kind, doc.obj.name) == ("Mesh", "m")


def test_more_documents_than_the_limit_are_refused_whole() -> None:
    """1,001 documents in one source: one line naming the rule, no per-document noise."""
    text = "---\n{}\n" * (yamlsafety.MAX_DOCUMENTS + 1)
    assert problems_of(text, "many.yaml") == [
        "many.yaml: more than 1000 YAML documents in one source; split it (rule yaml-max-documents)"
    ]


def test_a_text_over_the_size_limit_is_refused_before_parsing() -> None:
    """A source larger than the limit is refused by its size, whatever it holds."""
    text = "#" * (yamlsafety.MAX_SOURCE_BYTES + 1)
    assert problems_of(text, "big.yaml") == [
        f"big.yaml: {yamlsafety.MAX_SOURCE_BYTES + 1} bytes of manifests in one request; "
        f"meshplane reads at most {yamlsafety.MAX_SOURCE_BYTES} (rule yaml-max-size)"
    ]


def test_meshplane_apply_refuses_the_bomb_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """`meshplane apply -f lol.yaml` exits 1 with the one-line refusal; nothing is created."""
    bomb = tmp_path / "lol.yaml"
    bomb.write_text(billion_laughs())
    result = cli("apply", "-f", str(bomb))
    assert (result.code, result.out) == (1, "")
    assert result.err == "error: " + ALIAS_REFUSAL.replace("lol.yaml", str(bomb), 1) + "\n"
    assert cli("get", "mesh").err == "No resources found.\n"


def test_manifests_endpoint_refuses_the_bomb_over_raw_http(server: Server) -> None:
    """POST /meshplane/v1/manifests/apply with the bomb answers 422 Invalid with that line."""
    body = json.dumps({"sources": [{"name": "lol.yaml", "text": billion_laughs()}]}).encode()
    url = f"{server.url}/meshplane/v1/manifests/apply"
    signer = Signer.from_file(server.data_dir / "credentials", "us-west-2")
    headers = signer.sign("POST", url, body, {"Content-Type": "application/json"})
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 422
    assert json.loads(caught.value.read()) == {"reason": "Invalid", "errors": [ALIAS_REFUSAL]}
