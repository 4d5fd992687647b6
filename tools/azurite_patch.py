"""Stop Azurite's queue store from re-sorting its indexes on every call: a long work queue stays fast.

Why this exists: Azurite 3.35.0 (the last release that runs on node 20, see package.json) keeps every
message of every queue in one LokiJS collection with four binary indexes. Before each receive, peek, delete
and update it removes expired messages with ``coll.remove(docs)``, and LokiJS's batch remove with an empty
array still force-rebuilds every index (a full sort of all messages, each); a receive that returns messages
then updates them with ``coll.update(docs)``, which marks every index dirty and sorts them all again. Delete
and update also look a message up by ``accountName`` first, and LokiJS uses an index only for a query's
first field, so that is a scan of every message. Measured here with ``azure-storage-queue`` against 10,000
delayed messages: an empty receive 31-33 ms of Azurite's one thread, a receive plus delete 46-49 ms (20,000:
71-75 ms and 83-104 ms). Azure Storage has no such cost (a queue's target is 2,000 messages/s whatever its
length), so a 10,000-cluster chaos run, whose work queue holds thousands of delayed follow-ups, measured
Azurite rather than the product.

The edits: skip the remove when nothing expired; update the received messages one by one (LokiJS then keeps
the indexes adaptively; the fields a receive changes, ``timeNextVisible``, ``popReceipt`` and
``dequeueCount``, are not indexed, so no index is searched while out of order); look messages up by
``messageId`` first, as upstream does since 3.36.0 (Azure/Azurite#2588, "Fix query performance by reordering
property names", which needs node 22). What each query matches is unchanged. After: an empty receive 7.6 ms,
a receive plus delete 5.9 ms at 10,000. (Also indexing ``timeNextVisible`` was tried and made Azurite answer
500 on receives, most likely because a receive changes it on several messages before updating the first, so
the adaptive re-insert binary-searches an index that is out of order; it is not part of the patch.)

``python -m tools.azurite_patch`` patches ``node_modules`` in place and is idempotent (``make`` runs it
after ``npm ci``); :func:`require_patched` is what starting Azurite calls, so nothing runs on the slow store
unnoticed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "node_modules/azurite/dist/src/queue/persistence/LokiQueueMetadataStore.js"
MARKER = "/* aks-backup-remediator: tools/azurite_patch.py */"

# (before, after, occurrences in 3.35.0's compiled store)
_EDITS: tuple[tuple[str, str, int], ...] = (
    (  # deleteMessage (upstream #2588)
        "accountName: account,\n            queueName: queue,\n            messageId\n",
        "messageId,\n            accountName: account,\n            queueName: queue\n",
        1,
    ),
    (  # updateMessage (upstream #2588)
        "accountName: message.accountName,\n            queueName: message.queueName,\n"
        "            messageId: message.messageId\n",
        "messageId: message.messageId,\n            accountName: message.accountName,\n"
        "            queueName: message.queueName\n",
        1,
    ),
    (  # clearExpiredMessages: LokiJS's remove([]) force-rebuilds every index (a sort of all messages, each)
        "        coll.remove(docs);\n",
        "        if (docs.length > 0) {\n            coll.remove(docs);\n        }\n",
        1,
    ),
    (  # getMessages: update([...]) marks every index dirty and rebuilds all; one by one they stay adaptive
        "        coll.update(docs);\n",
        "        for (const doc of docs) {\n            coll.update(doc);\n        }\n",
        1,
    ),
    (  # getMessagesCount (the approximate count of queue properties)
        "const query = { accountName: account, queueName: queue };",
        "const query = { queueName: queue, accountName: account };",
        1,
    ),
)


class AzuritePatchError(RuntimeError):
    """The installed Azurite is not the one this patch was written for, or it is not patched."""


def patch(store: Path = STORE) -> bool:
    """Patch ``store`` in place; False when it already was. Raises when any edit does not match exactly."""
    text = store.read_text(encoding="utf-8")
    if MARKER in text:
        return False
    for before, after, count in _EDITS:
        found = text.count(before)
        if found != count:
            raise AzuritePatchError(
                f"{store}: expected {count} occurrence(s) of {before!r}, found {found} "
                "(not Azurite 3.35.0's queue store? see tools/azurite_patch.py)"
            )
        text = text.replace(before, after)
    store.write_text(f"{MARKER}\n{text}", encoding="utf-8")
    return True


def require_patched(store: Path = STORE) -> None:
    """Raise unless ``store`` carries the patch (``make deps`` applies it)."""
    if not store.exists() or MARKER not in store.read_text(encoding="utf-8"):
        raise AzuritePatchError(f"{store} is not patched: run `make deps` (`python -m tools.azurite_patch`)")


def main() -> int:
    try:
        changed = patch()
    except (OSError, AzuritePatchError) as exc:
        print(f"azurite_patch: {exc}", file=sys.stderr)
        return 2
    print(f"azurite_patch: {'patched' if changed else 'already patched'} {STORE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
