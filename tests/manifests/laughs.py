"""Hostile inputs shared by the hostile-input tests and the bench."""

from __future__ import annotations


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb as a manifest: each level holds nine aliases of the one above."""
    lines = ["apiVersion: appmesh.k8s.aws/v1beta2", "kind: Mesh", "metadata:", "  name: lol"]
    lines.append('  labels: {a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]}')
    lines.append("spec:")
    lines.append("  lols:")
    for level in range(1, levels + 1):
        refs = ",".join(f"*a{level - 1}" for _ in range(9))
        lines.append(f"    l{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"
