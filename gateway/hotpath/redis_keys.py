"""Every Redis key name AIProxy uses, in one place: the gateway, the Django side (keys,
catalog, cache, analytics) and the tests build names only from here.

Naming scheme: `aip:<kind>:<parts>`, the parts joined by ':' from the widest to the
narrowest (workspace or scope, then the period or digest). A workspace's data is named by
its schema (`ws_acme`) where the gateway knows it from the key record, or by the
workspace's id where the name must not change with a rename (budgets, quota, limits).

- Published by the Django side, read by every gateway process (the hot directory):
  `aip:key:<sha-256 of the secret>` (a key record, JSON), `aip:catalog` (the catalog
  snapshot, JSON) and `aip:catalog:version` (a counter bumped with each publication).
- Limits (gateway/hotpath/limits.py): token buckets `aip:rl:<ident>:rpm|tpm` (a string
  '<tokens> <ms>'), budgets `aip:bud:<ident>:<period>` (a hash: 'spent' and reservation
  cells), the plan's quota `aip:quota:ws:<workspace id>:m<YYYY-MM>` (a counter), and spend
  per day `aip:spend:<schema>:<YYYY-MM-DD>` (a hash of counters per workspace, key and model).
  An <ident> names whose limit it is: `key:<schema>:<key id>`, `user:<workspace id>:<user
  id>`, `ws:<workspace id>`, `model:<public name>`, `provider:<name>`, or `global`.
- Budget alerts (analytics/alerts.py): `aip:alerted:<ident>:<period>:<threshold %>`, set
  once an alert is sent.
- The exact response cache (gateway/hotpath/response_cache.py, cache/):
  `aip:cache:<schema>:<ws|key<id>>:<sha-256>` (an answer), with per workspace
  `aip:cache-index:<schema>` (a sorted set of its entries by expiry) and
  `aip:cache-size:<schema>` (a hash of their sizes).
- Usage (gateway/hotpath/record.py, analytics/tasks.py): the stream `aip:usage` and its
  dead letters `aip:usage:dead`.

Keys a Lua script touches together (for Redis Cluster, issue 21: a script's keys must
share one hash slot, and these span workspaces, models and the global bucket, so in a
cluster they need one hash tag or scripts split by slot):
- RESERVE (limits.py): the request's buckets `aip:rl:*` (key, member, workspace, model,
  provider, global), its budgets `aip:bud:*` (key, workspace), the quota `aip:quota:*`, and
  the exact-cache entry `aip:cache:*` it reads.
- SETTLE (limits.py): buckets `aip:rl:*`, budgets `aip:bud:*` and the day's `aip:spend:*`.
- FINISH (record.py): the stream `aip:usage`, an exact-cache entry with its
  `aip:cache-index:*` and `aip:cache-size:*`, and SETTLE's keys.
Everything else is a single-key command or a pipeline without atomicity.
"""

from __future__ import annotations

# --- the hot directory ---------------------------------------------------------------

KEY_RECORD_PREFIX = "aip:key:"
CATALOG_KEY = "aip:catalog"
CATALOG_VERSION_KEY = "aip:catalog:version"


def key_record_key(key_hash: str) -> str:
    """A key record, named by the SHA-256 of the key's secret (keys.tokens.token_hash)."""
    return KEY_RECORD_PREFIX + key_hash


# --- limits, budgets, quota and spend ------------------------------------------------

GLOBAL_IDENT = "global"


def key_ident(schema: str, key_id: int) -> str:
    return f"key:{schema}:{key_id}"


def member_ident(workspace_id: int, user_id: int | None) -> str:
    return f"user:{workspace_id}:{user_id}"


def workspace_ident(workspace_id: int) -> str:
    return f"ws:{workspace_id}"


def model_ident(public_name: str) -> str:
    return f"model:{public_name}"


def provider_ident(name: str) -> str:
    return f"provider:{name}"


def bucket_key(ident: str, unit: str) -> str:
    """A token bucket; `unit` is 'rpm' (requests) or 'tpm' (tokens)."""
    return f"aip:rl:{ident}:{unit}"


def budget_key(ident: str, period_key: str) -> str:
    """A budget's spend and reservations in one period ('d2026-11-29', 'm2026-11', 'lifetime', ...)."""
    return f"aip:bud:{ident}:{period_key}"


def quota_key(workspace_id: int, month_key: str) -> str:
    """Requests a workspace made in a month ('m2026-11'), against its plan's quota."""
    return f"aip:quota:ws:{workspace_id}:{month_key}"


def spend_day_key(schema: str, day: str) -> str:
    """Spend and requests of a workspace on a UTC day (YYYY-MM-DD), per key and model."""
    return f"aip:spend:{schema}:{day}"


def budget_alert_marker(ident: str, period_key: str, threshold: int) -> str:
    """Set once the alert for this budget, period and threshold (a percentage) was sent."""
    return f"aip:alerted:{ident}:{period_key}:{threshold}"


# --- the exact response cache --------------------------------------------------------

def exact_entry_key(schema: str, scope: str, digest: str) -> str:
    """An exact-cache entry; `scope` is 'ws' (shared by the workspace) or 'key<id>'."""
    return f"aip:cache:{schema}:{scope}:{digest}"


def exact_entry_pattern(schema: str) -> str:
    """SCAN pattern of every exact-cache entry of a workspace (both scopes)."""
    return f"aip:cache:{schema}:*"


def exact_index_key(schema: str) -> str:
    """Sorted set of a workspace's exact-cache entries, scored by expiry (epoch seconds)."""
    return f"aip:cache-index:{schema}"


def exact_sizes_key(schema: str) -> str:
    """Hash of a workspace's exact-cache entries to their size in bytes."""
    return f"aip:cache-size:{schema}"


# --- usage ---------------------------------------------------------------------------

USAGE_STREAM = "aip:usage"
# events that cannot be stored, kept with their error for inspection (analytics.tasks)
USAGE_DEAD_STREAM = USAGE_STREAM + ":dead"


# --- routing and health (issue 16) ---------------------------------------------------
# Each deployment's keys carry the hash tag {<deployment id>}, so they live in one Redis
# Cluster slot. The health sync script (gateway/hotpath/health.py, SYNC) runs once per
# deployment and touches that deployment's HEALTH hash and PROBE key together, plus the
# shared HEALTH_EVENTS stream when the circuit changes state: that stream is the one key
# outside the deployment's slot (fine on one Redis; on a cluster, issue 21, the script
# already returns the transition, so the caller can append it instead).

HEALTH_EVENTS_STREAM = "aip:health:events"  # circuit transitions: id, name, state ("down"/"up"), error, at (ms)
HEALTH_EVENTS_MAXLEN = 10_000  # approximate cap (XADD MAXLEN ~)
HEALTH_EVENTS_CURSOR = "aip:health:events:cursor"  # the last entry the alert task has mailed
HEALTH_ALERTS_LOCK = "aip:health:events:lock"  # one alert task at a time


def deployment_health_key(deployment_id: int) -> str:
    """Hash: the circuit (state, fails, opened, error), latency averages, the minute's
    requests and tokens, the error-rate window's cells and each process's requests in flight."""
    return f"aip:dep:{{{deployment_id}}}:health"


def deployment_probe_key(deployment_id: int) -> str:
    """String, SET NX PX: the one process (and request) trying an open circuit (half-open)."""
    return f"aip:dep:{{{deployment_id}}}:probe"
