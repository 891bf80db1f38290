"""TagResource, UntagResource and ListTagsForResource: tags addressed by ARN.

App Mesh keeps one value per key, at most 50 tags per resource, and drops a
resource's tags with it. A request that would pass 50 applies nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshplane.model import apimodel, errors, kinds, validation
from meshplane.service import extending, pagination
from meshplane.service.resources import MAX_TAGS, Account
from meshplane.store.protocols import ReadTransaction, Store
from meshplane.store.records import Record, Tag

TAGS_PAGE_MAX = 50


class Tagging:
    """Tag operations over the store."""

    def __init__(
        self, store: Store, account: Account, tokens: pagination.Tokens | None = None
    ) -> None:
        """Bind to the store and the account whose ARNs it serves; sign pages with ``tokens``."""
        self.store = store
        self.account = account
        self._tokens = tokens or pagination.Tokens()

    def _find(self, tx: ReadTransaction, arn: str) -> Record:
        parsed = kinds.parse_arn(arn)
        record = tx.get_by_arn(arn) if parsed else None
        if record is None:
            raise errors.NotFoundException(
                f"resourceArn: no App Mesh resource has the ARN {arn} (expected "
                f"arn:aws:appmesh:{self.account.region}:{self.account.account_id}:mesh/...)"
            )
        return record

    def tag(self, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
        """Add or overwrite tags by key; keys not mentioned stay."""
        validation.check(apimodel.shape("TagList"), list(tags), "tags", tag_limit_error=True)
        with self.store.transaction() as tx:
            record = self._find(tx, arn)
            merged = {t.key: t.value for t in record.tags}
            for tag in tags:
                merged[tag["key"]] = tag["value"]
            if len(merged) > MAX_TAGS:
                raise errors.TooManyTagsException(
                    f"tags: the resource would carry {len(merged)} tags; the limit is "
                    f"{MAX_TAGS} and nothing was applied"
                )
            extending.check(tx, record.key, merged)
            tx.set_tags(record.key, [Tag(k, v) for k, v in merged.items()])

    def untag(self, arn: str, keys: Sequence[str]) -> None:
        """Remove the tags with these keys (absent keys are ignored)."""
        validation.check(apimodel.shape("TagKeyList"), list(keys), "tagKeys")
        with self.store.transaction() as tx:
            record = self._find(tx, arn)
            drop = set(keys)
            tx.set_tags(record.key, [t for t in record.tags if t.key not in drop])

    def list_tags(
        self, arn: str, limit: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        """One page of a resource's tags."""
        page = pagination.check_limit(limit, TAGS_PAGE_MAX)
        after = self._tokens.decode(f"tags/{arn}", next_token)
        with self.store.read() as tx:
            record = self._find(tx, arn)
        chosen = record.tags[after : after + page]
        result: dict[str, Any] = {"tags": [{"key": t.key, "value": t.value} for t in chosen]}
        if after + page < len(record.tags):
            result["nextToken"] = self._tokens.encode(f"tags/{arn}", after + page)
        return result
