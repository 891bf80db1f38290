"""Run inside the frontend's namespace: GET the frontend, print which backend versions answered.

``python count_versions.py URL N`` sends N requests; ``python count_versions.py URL
--until PATH`` keeps sending until PATH exists, and creates ``PATH.started`` once
its first request is answered, so a test can change weights under live traffic.
Either way it prints one JSON line
``{"versions": {"1.0": 40}, "failed": 0, "errors": []}``. Standard library only;
no proxy settings are read (interception, not HTTP_PROXY, steers the frontend's call).
"""

from __future__ import annotations

import collections
import json
import pathlib
import sys
import urllib.error
import urllib.request


def main() -> None:
    """Send the requests one after another and report the tally."""
    url, amount = sys.argv[1], sys.argv[2:]
    stop = pathlib.Path(amount[1]) if amount[0] == "--until" else None
    count = None if stop is not None else int(amount[0])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    versions: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    sent = 0
    while (sent < count) if count is not None else not (stop and stop.exists()):
        sent += 1
        try:
            with opener.open(url, timeout=20) as answer:
                versions[str(json.loads(answer.read())["backend"])] += 1
        except urllib.error.HTTPError as error:
            errors.append(f"{error.code}: {error.read().decode(errors='replace')}")
        except (OSError, ValueError, KeyError) as error:
            errors.append(repr(error))
        if stop is not None and sent == 1:
            stop.with_suffix(".started").touch()
    report = {"versions": dict(versions), "failed": len(errors), "errors": errors[:3]}
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
