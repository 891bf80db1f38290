"""Shared concepts live once, in model: no other package defines its own copy."""

from __future__ import annotations

import ast
from pathlib import Path

import meshplane

# Function names that belong to model.selectors, model.naming and model.kinds only.
OWNED = {
    "matches": "model/selectors.py",
    "selects": "model/selectors.py",
    "default_aws_name": "model/naming.py",
    "parse_node_id": "model/naming.py",
    "node_id": "model/naming.py",
    "parse_arn": "model/kinds.py",
    "arn": "model/kinds.py",
}
# Properties that hand out a node id built by model.naming are not a second definition.
ALLOWED = {("translate/identity.py", "node_id"), ("runtime/selecting.py", "node_id")}


def test_no_package_redefines_a_model_concept() -> None:
    """matches/selects, awsName defaults, node ids and ARNs are defined only where OWNED says."""
    root = Path(meshplane.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef)
                and node.name in OWNED
                and where != OWNED[node.name]
                and (where, node.name) not in ALLOWED
            ):
                found.append(f"{where}:{node.lineno} {node.name}")
    assert found == []
