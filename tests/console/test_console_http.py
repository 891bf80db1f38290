"""The console over plain HTTP: login, sessions, origin checks, escaping, the event stream."""

from __future__ import annotations

import configparser
import http.client
import re
import urllib.parse
from pathlib import Path

import pytest

from meshplane.console import Console
from meshplane.console.credentials import FileCredentials, GeneratedKey, load_credentials
from meshplane.console.sessions import Sessions
from meshplane.testing import ControlPlane

KEY = GeneratedKey("MPCONTESTKEY0000001", "s3cret-s3cret")
HOSTILE_MESH = "<script>alert(1)<\\script>"  # names may not hold "/" (ARN separator)
HOSTILE_ROUTE = '<img src=x onerror="alert(2)">'
ECHO_MANIFESTS = Path(__file__).resolve().parents[2] / "examples" / "echo"


class Browser:
    """A tiny HTTP client that keeps the session cookie and does not follow redirects."""

    def __init__(self, plane: ControlPlane) -> None:
        parsed = urllib.parse.urlsplit(plane.endpoint)
        self.host, self.port = parsed.hostname or "", parsed.port or 0
        self.origin = plane.endpoint
        self.cookie: str | None = None

    def call(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        if body is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection.request(method, path, body=body, headers=sent)
        answer = connection.getresponse()
        text = answer.read(65536).decode()
        found = {k.lower(): v for k, v in answer.getheaders()}
        connection.close()
        return answer.status, found, text

    def login(
        self, key_id: str, secret: str, origin: str | None = None
    ) -> tuple[int, dict[str, str], str]:
        form = urllib.parse.urlencode({"access_key_id": key_id, "secret_access_key": secret})
        status, headers, text = self.call(
            "POST", "/console/login", form, {"Origin": origin or self.origin}
        )
        if "set-cookie" in headers:
            self.cookie = headers["set-cookie"].split(";", 1)[0]
        return status, headers, text


@pytest.fixture
def plane(tmp_path: Path) -> ControlPlane:
    with ControlPlane(tmp_path, mounts=[Console(KEY).mount]) as running:
        yield running


def test_pages_need_a_session_and_login_sets_a_strict_httponly_cookie(plane: ControlPlane) -> None:
    """Without a session pages redirect to the login form; a good key sets the cookie."""
    browser = Browser(plane)
    status, headers, _ = browser.call("GET", "/console/")
    assert (status, headers["location"]) == (303, "/console/login")
    assert browser.call("GET", "/console/events")[0] == 401
    assert browser.call("GET", "/console/?fragment=1")[0] == 401
    status, _, text = browser.login(KEY.access_key_id, "wrong")
    assert status == 401
    assert "Unknown access key id or wrong secret access key." in text
    assert browser.cookie is None
    status, headers, _ = browser.login(KEY.access_key_id, KEY.secret_access_key)
    assert (status, headers["location"]) == (303, "/console/")
    attributes = {part.strip().split("=")[0].lower() for part in headers["set-cookie"].split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "SameSite=Strict" in headers["set-cookie"]
    assert "Max-Age=900" in headers["set-cookie"]
    status, headers, text = browser.call("GET", "/console/")
    assert status == 200
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    assert "<h1>Meshes</h1>" in text


def test_cross_origin_requests_are_refused(plane: ControlPlane) -> None:
    """Another origin cannot log in, read a page, or post without an Origin header."""
    browser = Browser(plane)
    status, _, text = browser.login(KEY.access_key_id, KEY.secret_access_key, "http://evil.test")
    assert (status, text) == (403, "cross-origin request from http://evil.test refused")
    assert browser.cookie is None
    form = urllib.parse.urlencode({"access_key_id": KEY.access_key_id, "secret_access_key": "x"})
    assert browser.call("POST", "/console/login", form)[0] == 403
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    assert browser.call("GET", "/console/", headers={"Origin": "http://evil.test"})[0] == 403
    assert browser.call("GET", "/console/", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert browser.call("GET", "/console/", headers={"Sec-Fetch-Site": "same-origin"})[0] == 200


def test_names_are_escaped_everywhere(plane: ControlPlane) -> None:
    """A mesh and a route named like markup render as text, never as tags."""
    appmesh = plane.appmesh()
    appmesh.create_mesh(meshName=HOSTILE_MESH)
    appmesh.create_virtual_node(meshName=HOSTILE_MESH, virtualNodeName="vn", spec={})
    listener = {"portMapping": {"port": 80, "protocol": "http"}}
    appmesh.create_virtual_router(
        meshName=HOSTILE_MESH, virtualRouterName="vr", spec={"listeners": [listener]}
    )
    action = {"weightedTargets": [{"virtualNode": "vn", "weight": 7}]}
    appmesh.create_route(
        meshName=HOSTILE_MESH,
        virtualRouterName="vr",
        routeName=HOSTILE_ROUTE,
        spec={"httpRoute": {"match": {"prefix": "/<b>"}, "action": action}},
    )
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, index = browser.call("GET", "/console/")
    assert "<script>alert" not in index
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;" in index
    link = "/console/meshes/" + urllib.parse.quote(HOSTILE_MESH, safe="")
    assert f'href="{link}"' in index
    status, _, page = browser.call("GET", link)
    assert status == 200
    assert "<img" not in page
    assert "<b>" not in page.replace("<b data-testid", "")
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert 'data-testid="weight-vr-&lt;img src=x onerror=&quot;alert(2)&quot;&gt;-vn">7<' in page


def test_the_event_stream_sends_the_revision_now_and_after_a_change(plane: ControlPlane) -> None:
    """The stream opens with the current revision and sends the next after a write."""
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    connection = http.client.HTTPConnection(browser.host, browser.port, timeout=30)
    connection.request("GET", "/console/events", headers={"Cookie": browser.cookie or ""})
    answer = connection.getresponse()
    assert answer.status == 200
    assert answer.getheader("Content-Type") == "text/event-stream"
    assert [answer.readline(), answer.readline(), answer.readline()] == [
        b"event: change\n",
        b"data: 0\n",
        b"\n",
    ]
    plane.appmesh().create_mesh(meshName="m")
    assert [answer.readline(), answer.readline()] == [b"event: change\n", b"data: 1\n"]
    connection.close()


def test_a_session_expires_and_a_tampered_cookie_is_refused() -> None:
    """The HMAC covers the key id and the expiry; past the TTL the cookie is worthless."""
    now = [1000.0]
    sessions = Sessions(lambda: now[0], ttl=60, key=b"k" * 32)
    value = sessions.issue("AKID")
    assert value.startswith("AKID.1060.")
    assert sessions.verify(value) == "AKID"
    assert sessions.verify(value.replace("AKID", "ROOT")) is None
    assert sessions.verify(value.replace(".1060.", ".9999.")) is None
    assert sessions.verify("garbage") is None
    now[0] = 1060.0
    assert sessions.verify(value) is None


def test_credentials_come_from_the_data_dir_file_or_a_generated_key(tmp_path: Path) -> None:
    """A credentials file answers lookups; without one a random console key is made."""
    lookup, generated = load_credentials(tmp_path)
    assert isinstance(lookup, GeneratedKey)
    assert generated is lookup
    assert lookup(generated.access_key_id) == generated.secret_access_key
    assert lookup("OTHER") is None
    (tmp_path / "credentials").write_text(
        "[admin]\naws_access_key_id = AKIAADMIN\naws_secret_access_key = adm1n\n"
        "[reader]\naws_access_key_id = AKIAREAD\naws_secret_access_key = r3ad\n",
        encoding="utf-8",
    )
    lookup, generated = load_credentials(tmp_path)
    assert generated is None
    assert isinstance(lookup, FileCredentials)
    assert (lookup("AKIAREAD"), lookup("AKIAADMIN"), lookup("nobody")) == ("r3ad", "adm1n", None)


def test_the_mesh_page_draws_who_calls_whom_with_traffic_labels(plane: ControlPlane) -> None:
    """The walkthrough's topology: frontend → its service → vr-echo-backend → blue 100 and
    green 0, in four columns, a traffic label per node and per route target (none yet)."""
    plane.apply(ECHO_MANIFESTS)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    status, _, page = browser.call("GET", "/console/meshes/demos?fragment=1")
    assert status == 200
    graph = page[page.index('<svg class="topology"') : page.index("</svg>")]
    boxes = re.findall(r'data-testid="box-(\w+)-([^"]+)"', graph)
    assert sorted(boxes) == [
        ("vn", "vn-echo-backend-blue"),
        ("vn", "vn-echo-backend-green"),
        ("vn", "vn-echo-frontend-blue"),
        ("vr", "vr-echo-backend"),
        ("vs", "vs-echo-backend.demos.svc.cluster.local"),
    ]
    assert graph.count('<line class="edge"') == 4
    assert re.findall(r'class="edge-label"[^>]*>([^<]*)<', graph) == [
        "vrr-echo-backend 100",
        "vrr-echo-backend 0",
    ]
    labels = dict(re.findall(r'data-traffic="([^"]+)">([^<]*)<', graph))
    assert labels == {
        "target/demos/vn-echo-backend-blue": "no traffic",
        "target/demos/vn-echo-backend-green": "no traffic",
        "node/demos/vn-echo-backend-blue": "no traffic",
        "node/demos/vn-echo-backend-green": "no traffic",
        "node/demos/vn-echo-frontend-blue": "no traffic",
    }
    columns = {
        name: int(x)
        for name, x in re.findall(
            r'data-testid="box-\w+-([^"]+)"><title>[^<]*</title><rect x="(\d+)"', graph
        )
    }
    assert columns == {
        "vn-echo-frontend-blue": 20,
        "vs-echo-backend.demos.svc.cluster.local": 390,
        "vr-echo-backend": 760,
        "vn-echo-backend-blue": 1130,
        "vn-echo-backend-green": 1130,
    }


ROUTE_FORM = {"router": "vr-echo-backend", "route": "vrr-echo-backend"}
BLUE_FIELD, GREEN_FIELD = "weight:vn-echo-backend-blue", "weight:vn-echo-backend-green"


def _weights(plane: ControlPlane) -> list[int]:
    route = plane.appmesh().describe_route(
        meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
    )["route"]
    return [t["weight"] for t in route["spec"]["httpRoute"]["action"]["weightedTargets"]]


def _admin(plane: ControlPlane) -> tuple[str, str]:
    keys = configparser.ConfigParser(interpolation=None)
    keys.read(plane.credentials_file)
    return keys["meshplane"]["aws_access_key_id"], keys["meshplane"]["aws_secret_access_key"]


def _form_token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found is not None, "no edit form on the page"
    return found[1]


def test_editing_weights_needs_the_form_token_and_the_principals_permission(
    tmp_path: Path,
) -> None:
    """The admin principal's form changes 100/0 to 30/70; a missing token, a bad weight, a
    console-only key (no form, refused even with a valid token) and a principal without
    appmesh:UpdateRoute are refused and change nothing."""
    web_console = Console(KEY)
    with ControlPlane(tmp_path, mounts=[web_console.mount]) as plane:
        _edits(plane, web_console)


def _edits(plane: ControlPlane, web_console: Console) -> None:
    plane.apply(ECHO_MANIFESTS)
    path = "/console/meshes/demos/weights"
    admin = Browser(plane)
    admin.login(*_admin(plane))
    _, _, page = admin.call("GET", "/console/meshes/demos")
    token = _form_token(page)
    send = {**ROUTE_FORM, BLUE_FIELD: "30", GREEN_FIELD: "70"}
    origin = {"Origin": admin.origin}

    status, _, refused = admin.call("POST", path, urllib.parse.urlencode(send), origin)
    assert status == 403
    assert "the form is stale or not this session&#x27;s: reload" in refused
    bad = {**send, "token": token, GREEN_FIELD: "101"}
    status, _, refused = admin.call("POST", path, urllib.parse.urlencode(bad), origin)
    assert status == 400
    assert "the weight of vn-echo-backend-green must be a whole number from 0 to 100" in refused
    assert _weights(plane) == [100, 0]

    console_only = Browser(plane)
    console_only.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, page = console_only.call("GET", "/console/meshes/demos")
    assert 'name="token"' not in page
    cookie = (console_only.cookie or "").split("=", 1)[1]
    forged = {**send, "token": web_console.sessions.form_token(cookie)}
    status, _, refused = console_only.call("POST", path, urllib.parse.urlencode(forged), origin)
    assert status == 403
    assert (
        f"{KEY.access_key_id} is a console-only key: it may read, not change, the mesh" in refused
    )

    reader = plane.client().create_credentials(
        "reader",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "appmesh:Describe*", "Resource": "*"}],
        },
    )
    viewer = Browser(plane)
    viewer.login(reader["accessKeyId"], reader["secretAccessKey"])
    _, _, page = viewer.call("GET", "/console/meshes/demos")
    denied = {**send, "token": _form_token(page)}
    status, _, refused = viewer.call("POST", path, urllib.parse.urlencode(denied), origin)
    assert status == 403
    arn = (
        "arn:aws:appmesh:us-west-2:123456789012:"
        "mesh/demos/virtualRouter/vr-echo-backend/route/vrr-echo-backend"
    )
    assert re.findall(r'data-testid="edit-error">([^<]*)<', refused) == [
        f"reader may not appmesh:UpdateRoute on {arn}: no statement allows it"
    ]
    assert _weights(plane) == [100, 0]

    status, headers, _ = admin.call(
        "POST", path, urllib.parse.urlencode({**send, "token": token}), origin
    )
    assert (status, headers["location"]) == (303, "/console/meshes/demos")
    assert _weights(plane) == [30, 70]


def test_five_failed_logins_from_one_address_refuse_it_for_a_minute(tmp_path: Path) -> None:
    """After 5 wrong secrets even the right one is refused (429, Retry-After 60) until the
    first failure is 60 s old; then it logs in, and the slate is clean."""
    now = [1_000.0]
    web_console = Console(KEY, clock=lambda: now[0])
    with ControlPlane(tmp_path, mounts=[web_console.mount]) as plane:
        browser = Browser(plane)
        for second in range(5):
            now[0] = 1_000.0 + second
            assert browser.login(KEY.access_key_id, "wrong")[0] == 401
        status, headers, text = browser.login(KEY.access_key_id, KEY.secret_access_key)
        assert (status, headers["retry-after"], browser.cookie) == (429, "56", None)
        assert "Too many failed logins; try again in 56 s." in text
        now[0] = 1_060.0
        status, headers, _ = browser.login(KEY.access_key_id, KEY.secret_access_key)
        assert (status, headers["location"]) == (303, "/console/")
        assert browser.login(KEY.access_key_id, "wrong")[0] == 401
