"""Applying and removing the rules with Debian's ``iptables``/``ip6tables`` tools.

Idempotent by construction, so an init container that restarts (or an
operator who runs it twice) ends with exactly one copy of each rule:

1. hooks the contract no longer wants are deleted;
2. the owned chains are rewritten in one ``iptables-restore --noflush``
   transaction (declaring a chain there empties it, and nobody else's chain
   is touched), so no packet ever sees a half-written chain;
3. an owned chain the contract no longer wants is emptied and deleted;
4. each wanted hook is added only if ``iptables -C`` does not find it.

The tools are run through a :data:`Runner` so the steps can be followed in
tests without a kernel; the real one is :func:`run_tool`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from meshplane.interception import rules
from meshplane.interception.contract import Contract
from meshplane.interception.rules import Family, Rule

Runner = Callable[[Sequence[str], str | None], subprocess.CompletedProcess[str]]
"""Runs one tool invocation (argv, stdin text) and returns its completed process."""

CAP_NET_ADMIN = 12
NO_NET_ADMIN = (
    "proxy-init needs the NET_ADMIN capability (run it as root, or add NET_ADMIN to the "
    "init container's securityContext.capabilities)"
)


class InterceptionError(RuntimeError):
    """The rules could not be applied or removed; the message is one line for the user."""


def run_tool(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``stdin``, capturing its output (never raises on a non-zero exit)."""
    try:
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise InterceptionError(
            f"{argv[0]} is not installed (Debian: apt-get install iptables)"
        ) from None


def has_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    """Whether this process holds CAP_NET_ADMIN (true where the kernel does not say)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return True


def install(contract: Contract, run: Runner = run_tool) -> list[str]:
    """Install the contract's rules (IPv6 too when enabled); returns what was done, per family."""
    done = [_install(rules.build(contract, rules.IPV4), run)]
    if contract.enable_ipv6:
        done.append(_install(rules.build(contract, rules.IPV6), run))
    elif _usable(rules.IPV6, run) and (dropped := _remove(rules.IPV6, run)):
        # A contract that turned IPv6 off must not leave an earlier run's copy behind.
        done.append(_removed(rules.IPV6, dropped))
    return done


def clean(run: Runner = run_tool) -> list[str]:
    """Remove every rule and chain proxy-init owns, in both families where the tools exist."""
    done = [_removed(rules.IPV4, _remove(rules.IPV4, run))]
    if _usable(rules.IPV6, run):
        done.append(_removed(rules.IPV6, _remove(rules.IPV6, run)))
    return done


def _install(ruleset: rules.Ruleset, run: Runner) -> str:
    """Steps 1-4 of the module docstring for one family."""
    family = ruleset.family
    for chain, rule in rules.all_hooks():
        if (chain, rule) not in ruleset.hooks:
            _delete_hook(family, chain, rule, run)
    _check(run([family.restore, "--noflush"], ruleset.restore_script()), family.restore)
    for chain in rules.CHAINS:
        if chain not in ruleset.chains:
            _drop_chain(family, chain, run)
    added = 0
    for chain, rule in ruleset.hooks:
        if not _has_hook(family, chain, rule, run):
            _check(run(_argv(family, "-A", chain, rule), None), family.tool)
            added += 1
    count = sum(len(chain_rules) for chain_rules in ruleset.chains.values())
    return (
        f"{family.name}: {', '.join(ruleset.chains)} installed "
        f"({count} rules, {added} hooks added, {len(ruleset.hooks) - added} already present)"
    )


def _remove(family: Family, run: Runner) -> list[str]:
    """Delete the hooks, then empty and delete the owned chains; returns the chains dropped."""
    for chain, rule in rules.all_hooks():
        _delete_hook(family, chain, rule, run)
    return [chain for chain in rules.CHAINS if _drop_chain(family, chain, run)]


def _removed(family: Family, dropped: list[str]) -> str:
    """What a removal did, for the user."""
    return f"{family.name}: removed {', '.join(dropped) or 'nothing (no rules were installed)'}"


def _delete_hook(family: Family, chain: str, rule: Rule, run: Runner) -> None:
    """Delete every copy of a hook (a hand-run duplicate included)."""
    while _has_hook(family, chain, rule, run):
        _check(run(_argv(family, "-D", chain, rule), None), family.tool)


def _drop_chain(family: Family, chain: str, run: Runner) -> bool:
    """Empty and delete ``chain`` if it exists; whether it did."""
    if run([family.tool, "-t", rules.TABLE, "-S", chain], None).returncode != 0:
        return False
    _check(run([family.tool, "-t", rules.TABLE, "-F", chain], None), family.tool)
    _check(run([family.tool, "-t", rules.TABLE, "-X", chain], None), family.tool)
    return True


def _has_hook(family: Family, chain: str, rule: Rule, run: Runner) -> bool:
    """``iptables -C``: whether the hook is there (a missing target chain counts as no)."""
    return run(_argv(family, "-C", chain, rule), None).returncode == 0


def _usable(family: Family, run: Runner) -> bool:
    """Whether the family's tool is installed and its nat table answers."""
    if shutil.which(family.tool) is None:
        return False
    return run([family.tool, "-t", rules.TABLE, "-S"], None).returncode == 0


def _argv(family: Family, verb: str, chain: str, rule: Rule) -> list[str]:
    return [family.tool, "-t", rules.TABLE, verb, chain, *rule]


def _check(result: subprocess.CompletedProcess[str], tool: str) -> None:
    """Turn a failed tool run into one line: permission problems say what to grant."""
    if result.returncode == 0:
        return
    output = (result.stderr or result.stdout).strip()
    if "Permission denied" in output or "Operation not permitted" in output:
        raise InterceptionError(NO_NET_ADMIN)
    first = output.splitlines()[0] if output else f"exit status {result.returncode}"
    raise InterceptionError(f"{tool} failed: {first}")
