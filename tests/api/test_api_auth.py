"""Authentication and authorization on the wire: real boto3, the aws CLI and meshplane's CLI.

Every refusal is 403 in App Mesh's rendering with its exact code, and changes nothing
(the store revision is unchanged); the administrator's keys and a principal created with
`meshplane credentials create` work at once.
"""

from __future__ import annotations

import datetime
import itertools
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import ACCOUNT, REGION, MeshplaneServer, Rejection, make_client

ARN = f"arn:aws:appmesh:{REGION}:{ACCOUNT}"
_names = itertools.count(1)


def _meshplane(live: MeshplaneServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", *args, "--server", live.url],
        capture_output=True,
        text=True,
        env=live.cli_env(),
        timeout=60,
        check=False,
    )


def _principal(live: MeshplaneServer, tmp_path: Path, *statements: dict[str, Any]) -> Any:
    """`meshplane credentials create` with these statements; a boto3 client with its keys."""
    name = f"p{next(_names)}"
    policy = tmp_path / f"{name}.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    done = _meshplane(live, "credentials", "create", name, "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"[{name}]"
    key_id = lines[1].removeprefix("aws_access_key_id = ")
    secret = lines[2].removeprefix("aws_secret_access_key = ")
    assert (key_id[:4], len(key_id), len(secret)) == ("AKIA", 20, 40)
    return name, make_client(live.url, keys=(key_id, secret)), (key_id, secret)


def _raw(
    url: str, method: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            body = json.loads(error.read())
            return error.code, {**body, "header": error.headers["x-amzn-ErrorType"]}


def test_healthz_is_open_and_says_nothing_secret(server: MeshplaneServer) -> None:
    """Unsigned GET /healthz answers status and revision, nothing else."""
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as answer:
        assert sorted(json.loads(answer.read())) == ["revision", "status"]


def test_unsigned_requests_are_missing_a_token(
    server: MeshplaneServer, rejected: Rejection
) -> None:
    """boto3 with botocore's UNSIGNED config, and a bare GET, get MissingAuthenticationToken."""
    anonymous = boto3.client(
        "appmesh",
        endpoint_url=server.url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}),
    )
    rejected(
        lambda: anonymous.create_mesh(meshName="unsigned"),
        "MissingAuthenticationTokenException",
        403,
        "Missing Authentication Token",
    )
    status, body = _raw(f"{server.url}/meshplane/v1/credentials", "GET", None, {})
    assert (status, body["__type"], body["header"]) == (
        403,
        "MissingAuthenticationTokenException",
        "MissingAuthenticationTokenException",
    )


def test_unknown_keys_and_wrong_secrets_are_refused(
    server: MeshplaneServer, rejected: Rejection
) -> None:
    """An access key meshplane never issued is Unrecognized; the admin key with a wrong secret
    is an invalid signature."""
    stranger = make_client(server.url, keys=("AKIAIOSFODNN7EXAMPLE", "x" * 40))
    rejected(
        lambda: stranger.create_mesh(meshName="stranger"),
        "UnrecognizedClientException",
        403,
        "access key AKIAIOSFODNN7EXAMPLE is not known",
    )
    key_id, _ = server.keys()
    guessing = make_client(server.url, keys=(key_id, "y" * 40))
    rejected(
        lambda: guessing.create_mesh(meshName="guessing"),
        "InvalidSignatureException",
        403,
        "The request signature we calculated does not match",
    )


def test_a_tampered_body_is_an_invalid_signature(server: MeshplaneServer) -> None:
    """A body changed after botocore signed it is refused, and nothing is created."""
    url = f"{server.url}/v20190125/meshes"
    key_id, secret = server.keys()
    request = AWSRequest(
        method="PUT",
        url=url,
        data=b'{"meshName": "honest"}',
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(key_id, secret), "appmesh", REGION).add_auth(request)
    before = server.revision()
    status, body = _raw(url, "PUT", b'{"meshName": "tampered"}', dict(request.headers.items()))
    assert (status, body["__type"], body["header"]) == (
        403,
        "InvalidSignatureException",
        "InvalidSignatureException",
    )
    assert server.revision() == before


def test_a_large_body_is_verified_as_strictly_as_a_small_one(server: MeshplaneServer) -> None:
    """Past 64 KiB the signature is checked on a thread: tampered refused, honest accepted."""
    url = f"{server.url}/v20190125/meshes"
    key_id, secret = server.keys()
    padding = b" " * (80 * 1024)
    honest = b'{"meshName": "large-honest"}' + padding
    request = AWSRequest(
        method="PUT", url=url, data=honest, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(key_id, secret), "appmesh", REGION).add_auth(request)
    signed = dict(request.headers.items())
    before = server.revision()
    tampered = b'{"meshName": "large-forged"}' + padding
    status, body = _raw(url, "PUT", tampered, signed)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert server.revision() == before
    status, body = _raw(url, "PUT", honest, signed)
    assert (status, body["meshName"]) == (200, "large-honest")


def test_a_signature_dated_six_minutes_ago_is_refused(
    server: MeshplaneServer, rejected: Rejection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client clock 6 minutes behind signs a request the server refuses as expired."""
    behind = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=6)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: behind)
    client = make_client(server.url)
    rejected(
        lambda: client.create_mesh(meshName="late"),
        "InvalidSignatureException",
        403,
        "Signature expired or not yet valid",
    )


def test_a_policy_allows_only_what_it_names(
    server: MeshplaneServer, client: Any, rejected: Rejection, tmp_path: Path
) -> None:
    """A Describe*-on-one-mesh principal describes it at once; anything else is AccessDenied."""
    client.create_mesh(meshName="readable")
    client.create_mesh(meshName="hidden")
    _, reader, _ = _principal(
        server,
        tmp_path,
        {"Effect": "Allow", "Action": "appmesh:Describe*", "Resource": f"{ARN}:mesh/readable"},
    )
    assert reader.describe_mesh(meshName="readable")["mesh"]["meshName"] == "readable"
    rejected(
        lambda: reader.describe_mesh(meshName="hidden"),
        "AccessDeniedException",
        403,
        f"is not authorized to perform: appmesh:DescribeMesh on resource: {ARN}:mesh/hidden",
    )
    rejected(lambda: reader.delete_mesh(meshName="readable"), "AccessDeniedException", 403)
    rejected(lambda: reader.create_mesh(meshName="readable2"), "AccessDeniedException", 403)


def test_an_explicit_deny_wins(
    server: MeshplaneServer, client: Any, rejected: Rejection, tmp_path: Path
) -> None:
    """Allow appmesh:* but Deny Delete* on one mesh: it survives, others can be deleted."""
    client.create_mesh(meshName="precious")
    client.create_mesh(meshName="disposable")
    _, operator, _ = _principal(
        server,
        tmp_path,
        {"Effect": "Allow", "Action": "appmesh:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "appmesh:Delete*", "Resource": f"{ARN}:mesh/precious*"},
    )
    rejected(
        lambda: operator.delete_mesh(meshName="precious"),
        "AccessDeniedException",
        403,
        "(explicit deny)",
    )
    assert operator.delete_mesh(meshName="disposable")["mesh"]["meshName"] == "disposable"
    assert client.describe_mesh(meshName="precious")["mesh"]["status"]["status"] == "ACTIVE"


def test_credentials_list_and_delete(server: MeshplaneServer, tmp_path: Path) -> None:
    """`credentials list` shows the principal (no secret); after `delete` its key is refused."""
    name, principal, (_, secret) = _principal(
        server, tmp_path, {"Effect": "Allow", "Action": "appmesh:List*", "Resource": "*"}
    )
    assert isinstance(principal.list_meshes()["meshes"], list)
    listed = _meshplane(server, "credentials", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows["meshplane"][1:] == ["Allow", "*"]
    assert rows[name][1:] == ["Allow", "appmesh:List*"]
    assert secret not in listed.stdout
    deleted = _meshplane(server, "credentials", "delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith(f'principal "{name}" deleted (AKIA')
    Rejection(server)(principal.list_meshes, "UnrecognizedClientException", 403)
    refused = _meshplane(server, "credentials", "delete", "meshplane")
    assert refused.returncode == 1
    assert "cannot be deleted" in refused.stderr


def test_only_the_administrator_manages_credentials(
    server: MeshplaneServer, tmp_path: Path
) -> None:
    """A principal allowed appmesh:* cannot mint itself a key (meshplane:CreateCredentials)."""
    _, _, (key_id, secret) = _principal(
        server, tmp_path, {"Effect": "Allow", "Action": "appmesh:*", "Resource": "*"}
    )
    url = f"{server.url}/meshplane/v1/credentials/escalated"
    body = json.dumps({"policy": {"Version": "2012-10-17", "Statement": []}}).encode()
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(key_id, secret), "appmesh", REGION).add_auth(request)
    status, answer = _raw(url, "POST", body, dict(request.headers.items()))
    assert (status, answer["__type"], answer["header"]) == (
        403,
        "AccessDeniedException",
        "AccessDeniedException",
    )
    listed = _meshplane(server, "credentials", "list")
    assert "escalated" not in listed.stdout


def test_browser_requests_are_refused(server: MeshplaneServer) -> None:
    """A foreign Origin, a foreign Host and a text/plain body are refused before any check."""
    url = f"{server.url}/v20190125/meshes/anything"
    before = server.revision()
    status, body = _raw(url, "DELETE", None, {"Origin": "http://evil.example"})
    assert (status, body["__type"], body["header"]) == (
        403,
        "AccessDeniedException",
        "AccessDeniedException",
    )
    status, body = _raw(f"{server.url}/healthz", "GET", None, {"Host": "evil.example:80"})
    assert (status, body["__type"], body["header"]) == (
        403,
        "AccessDeniedException",
        "AccessDeniedException",
    )
    signed = server.signed_headers(
        "PUT",
        f"{server.url}/v20190125/meshes",
        b'{"meshName": "form"}',
        {"Content-Type": "text/plain"},
    )
    status, body = _raw(f"{server.url}/v20190125/meshes", "PUT", b'{"meshName": "form"}', signed)
    assert (status, body["__type"], body["header"]) == (
        400,
        "BadRequestException",
        "BadRequestException",
    )
    assert server.revision() == before


def test_the_aws_cli_with_wrong_keys_is_refused(server: MeshplaneServer) -> None:
    """`aws appmesh list-meshes` with keys meshplane never issued exits 255 naming the code."""
    env = {**server.cli_env(), "AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "w" * 40}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "aws"),
            "appmesh",
            "list-meshes",
            "--endpoint-url",
            server.url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 255
    assert "(UnrecognizedClientException) when calling the ListMeshes operation" in done.stderr


def test_auth_none_serves_loopback_only(start_server: Any, tmp_path: Path) -> None:
    """--auth none warns and serves unsigned on loopback; on another address it exits 2."""
    live = start_server({"MESHPLANE_AUTH": "none"})
    assert not live.credentials_file.exists()
    anyone = make_client(live.url, keys=("anyone", "anything"))
    assert anyone.create_mesh(meshName="open")["mesh"]["meshName"] == "open"
    assert "warning: --auth none: any local process or user can change this mesh" in (
        live.log_path.read_text()
    )
    argv = [sys.executable, "-m", "meshplane.cli.main", "serve", "--auth", "none"]
    argv += ["--host", "0.0.0.0", "--data-dir", str(tmp_path / "exposed")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == (
        "error: --auth none is for loopback only; refusing to serve 0.0.0.0 unauthenticated\n"
    )


def test_create_is_authorized_on_the_name_in_its_body(
    server: MeshplaneServer, rejected: Rejection, tmp_path: Path
) -> None:
    """Allowed CreateMesh on mesh/team-*: team-a is created, other-a is AccessDenied."""
    _, creator, _ = _principal(
        server,
        tmp_path,
        {"Effect": "Allow", "Action": "appmesh:CreateMesh", "Resource": f"{ARN}:mesh/team-*"},
    )
    assert creator.create_mesh(meshName="team-a")["mesh"]["metadata"]["arn"] == f"{ARN}:mesh/team-a"
    rejected(
        lambda: creator.create_mesh(meshName="other-a"),
        "AccessDeniedException",
        403,
        f"appmesh:CreateMesh on resource: {ARN}:mesh/other-a (no statement allows it)",
    )


def test_principals_and_the_admin_key_survive_a_restart(start_server: Any, tmp_path: Path) -> None:
    """After a restart the same admin key and a created principal's key still work."""
    data_dir = tmp_path / "kept"
    first = start_server(data_dir=data_dir)
    written = first.credentials_file.read_text()
    _, reader, keys = _principal(
        first, tmp_path, {"Effect": "Allow", "Action": "appmesh:List*", "Resource": "*"}
    )
    assert reader.list_meshes()["meshes"] == []
    assert first.stop() == 0
    second = start_server(data_dir=data_dir)
    assert second.credentials_file.read_text() == written
    assert make_client(second.url, keys=keys).list_meshes()["meshes"] == []
    assert make_client(second.url).create_mesh(meshName="after")["mesh"]["meshName"] == "after"
    assert "administrator profile kept in" in second.log_path.read_text()


def test_a_client_token_is_scoped_to_the_principal_that_signed_it(
    server: MeshplaneServer, client: Any, tmp_path: Path
) -> None:
    """The admin and a principal send the same clientToken for different meshes: both are
    created (two requests, not a conflict); the principal's retry replays its own answer."""
    _, other, _ = _principal(
        server, tmp_path, {"Effect": "Allow", "Action": "appmesh:*", "Resource": "*"}
    )
    before = {m["meshName"] for m in client.list_meshes()["meshes"]}
    mine = client.create_mesh(meshName="admins", clientToken="shared-token")["mesh"]
    theirs = other.create_mesh(meshName="theirs", clientToken="shared-token")["mesh"]
    assert (mine["meshName"], theirs["meshName"]) == ("admins", "theirs")
    again = other.create_mesh(meshName="theirs", clientToken="shared-token")["mesh"]
    assert again["metadata"] == theirs["metadata"]
    after = {m["meshName"] for m in client.list_meshes()["meshes"]}
    assert sorted(after - before) == ["admins", "theirs"]
