"""`get`'s and `proxy-status`'s tables without rich read exactly as rich prints them to a pipe."""

from __future__ import annotations

import re

import pytest
from rich._emoji_codes import EMOJI
from rich.console import Console
from rich.table import Table

from meshplane import client
from meshplane.cli import describing, plaintables, proxystatus


@pytest.fixture(autouse=True)
def _not_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FORCE_COLOR or TTY_COMPATIBLE from the caller's shell (they send tables to rich)."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)


ARN = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualNode/vn-echo-backend-blue"


def _documents() -> list[dict[str, object]]:
    """Three virtual routers, one with weights and labels, of different name lengths."""
    docs: list[dict[str, object]] = []
    for name, created in (("vr-a", 100.0), ("vr-echo-backend-long-name", 5.0), ("b", 0.0)):
        docs.append(
            {
                "kind": "VirtualRouter",
                "metadata": {
                    "name": name,
                    "namespace": "demos" if name != "b" else "other-namespace",
                    "creationEpoch": created,
                    "labels": {"app": name},
                },
                "spec": {
                    "awsName": f"{name}_demos",
                    "meshRef": {"name": "demos"},
                    "routes": [
                        {
                            "name": "r1",
                            "httpRoute": {
                                "action": {
                                    "weightedTargets": [
                                        {"virtualNodeRef": {"name": "blue"}, "weight": 90},
                                        {"virtualNodeRef": {"name": "green"}, "weight": 10},
                                    ]
                                }
                            },
                        }
                    ],
                },
                "status": {
                    "virtualRouterARN": ARN.replace("virtualNode/vn-echo-backend-blue", name),
                    "routeARNs": {"r1": "x"},
                    "conditions": [{"type": "VirtualRouterActive", "status": "True"}],
                },
            }
        )
    return docs


def _rich_grid(headers: list[str], rows: list[list[str]], header: bool) -> str:
    """What `get` printed through rich before (cli/manifests.py's `_show`)."""
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in headers:
        grid.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(*row)
    grid.show_header = header
    console = Console(width=plaintables.PIPE_WIDTH, highlight=False)
    with console.capture() as captured:
        console.print(grid)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("namespaces", [False, True])
@pytest.mark.parametrize("header", [True, False])
def test_get_tables_match_rich(wide: bool, namespaces: bool, header: bool) -> None:
    """Every shape of `get`'s table (wide, -A, -w's headerless rows) is rich's text."""
    headers, rows = describing.cells(
        "VirtualRouter", _documents(), wide=wide, namespaces=namespaces, now=1000.0
    )
    plain = plaintables.grid(headers, rows, header=header)
    assert plain is not None
    assert plain == _rich_grid(headers, rows, header)


def _report(proxies: list[dict[str, object]]) -> client.ProxiesReport:
    """A proxies report as the server answers it."""
    return client.ProxiesReport(revision=12, converged=False, proxies=proxies)


def _proxy(key: str, state: str, nack: str | None = None) -> dict[str, object]:
    """One proxy's entry with all four types, the listener NACKed when ``nack`` is given."""
    types = {
        kind: {"acked": "0123456789abcdef", "sent": "0123456789abcdef", "lastNack": None}
        for kind in ("Cluster", "Listener", "ClusterLoadAssignment", "RouteConfiguration")
    }
    if nack is not None:
        types["Listener"] = {"acked": "0123456789abcdef", "sent": "fedcba", "lastNack": nack}
    return {
        "key": key,
        "state": state,
        "revision": 11,
        "stats": "127.0.0.1:15090",
        "types": types,
        "warnings": [],
    }


@pytest.mark.parametrize(
    "proxies",
    [
        [],
        [_proxy("demos/vn-a/0", "SYNCED")],
        [_proxy("demos/vn-a/0", "SYNCED"), _proxy("demos/vn-b/1", "NACKED", "bad listener")],
    ],
)
def test_proxy_status_tables_match_rich(
    proxies: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The boxed proxy-status table (none, one and two proxies) is rich's text at 200 columns."""
    report = _report(proxies)
    table = Table(title=f"store revision {report.revision}", title_justify="left")
    for column in proxystatus.COLUMNS:
        table.add_column(column)
    for row in proxystatus._rows(report):
        table.add_row(*row)
    console = Console(width=proxystatus.PIPE_WIDTH)
    with console.capture() as captured:
        console.print(table)
    proxystatus._table(report)
    assert capsys.readouterr().out == captured.get()


@pytest.mark.parametrize(
    "cell",
    [
        "[bold]x",  # console markup
        "ok :ok: ok",  # an emoji code
        "a:100:b",  # digits that are an emoji code
        "tab\there",
        "café",
        "x" * 1001,  # wider than the pipe width
    ],
)
def test_cells_rich_would_change_are_left_to_rich(cell: str) -> None:
    """Markup, emoji codes, control and non-ASCII characters, overlong rows: rich prints them."""
    assert plaintables.grid(["NAME"], [[cell]]) is None


def test_a_proxy_row_that_would_wrap_is_left_to_rich() -> None:
    """A NOTES cell too long for 200 columns needs rich's wrapping."""
    assert plaintables.boxed("t", ["A", "B"], [["a", "n" * 200]], width=200) is None


def test_no_arn_piece_is_an_emoji_code() -> None:
    """The ARN pieces the plain path lets through (region, account, …) are none of rich's codes."""
    pieces = re.compile(plaintables._ARN_PIECE.pattern)
    assert [name for name in EMOJI if pieces.fullmatch(name)] == []


def test_a_terminal_gets_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """FORCE_COLOR (rich may style a pipe then) sends the table to rich."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plaintables.grid(["NAME"], [["a"]]) is None
