"""What the gateway enforces for an API key, typed: its own rate limits and budget, its
creator's limits as a member, the workspace's limits, budget, plan quota and routing bounds,
the response cache settings, and the model groups it may call.

The keys app builds the policy (keys.services.key_policy) and publishes it as JSON inside
the key's hot record; the Directory parses it once per record read (every KEY_TTL at
most), so a request reads attributes and never a dict. The JSON ("wire") form is the one
records have always had, so records published by an older release still load, and any
part may be missing: a missing part is no limit, an empty policy none at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetPolicy:
    """A spend limit over a period; a hard one refuses requests that could pass it, a soft
    one only alerts (at `thresholds`, percentages of the amount)."""

    amount: Decimal  # USD
    period: str = "monthly"  # "daily" | "weekly" | "monthly" | "lifetime"
    hard: bool = True
    thresholds: tuple[int, ...] = ()

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> BudgetPolicy | None:
        if not data or data.get("amount") is None:
            return None
        return cls(amount=Decimal(str(data["amount"])), period=str(data.get("period") or "monthly"),
                   hard=bool(data.get("hard", True)), thresholds=tuple(int(t) for t in data.get("thresholds") or ()))

    def to_wire(self) -> dict[str, Any]:
        return {"amount": str(self.amount), "period": self.period, "hard": self.hard, "thresholds": list(self.thresholds)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitScope:
    """Requests and tokens per minute, and a budget, of one scope (None: no limit)."""

    rpm: int | None = None
    tpm: int | None = None
    budget: BudgetPolicy | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> LimitScope | None:
        if not data:
            return None
        return cls(rpm=_count(data.get("rpm")), tpm=_count(data.get("tpm")), budget=BudgetPolicy.from_wire(data.get("budget")))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rpm is not None:
            out["rpm"] = self.rpm
        if self.tpm is not None:
            out["tpm"] = self.tpm
        if self.budget is not None:
            out["budget"] = self.budget.to_wire()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLimits(LimitScope):
    """The limits of the member who created the key, shared by all their keys."""

    user_id: int | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> MemberLimits | None:
        if not data:
            return None
        return cls(rpm=_count(data.get("rpm")), tpm=_count(data.get("tpm")), budget=BudgetPolicy.from_wire(data.get("budget")),
                   user_id=_count(data.get("id")))

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.user_id, **LimitScope.to_wire(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspacePolicy(LimitScope):
    """The workspace's limits and budget, shared by all its keys, and its plan's quota.
    `fail_open`: serve without limits when they cannot be checked, even with a hard budget.
    `max_attempts` bounds a request's attempts whatever its group or headers ask (None: no
    bound of the workspace's own); `overrides`: whether requests may send
    x-aiproxy-fallbacks and x-aiproxy-max-attempts. The wire form carries them only when
    they differ from these defaults, so older records load as they always did."""

    quota: int | None = None  # requests a month
    fail_open: bool = False
    max_attempts: int | None = None
    overrides: bool = True

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> WorkspacePolicy | None:
        if not data:
            return None
        return cls(rpm=_count(data.get("rpm")), tpm=_count(data.get("tpm")), budget=BudgetPolicy.from_wire(data.get("budget")),
                   quota=_count(data.get("quota")), fail_open=bool(data.get("fail_open")),
                   max_attempts=_count(data.get("max_attempts")), overrides=bool(data.get("overrides", True)))

    def to_wire(self) -> dict[str, Any]:
        out = LimitScope.to_wire(self)
        if self.quota is not None:
            out["quota"] = self.quota
        if self.fail_open:
            out["fail_open"] = True
        if self.max_attempts is not None:
            out["max_attempts"] = self.max_attempts
        if not self.overrides:
            out["overrides"] = False
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """The response cache for the key (its own settings where set, else the workspace's)."""

    ttl: int  # seconds an answer is kept (0: looked up, never stored)
    scope: str = "workspace"  # "workspace": shared by its keys | "key": this key's own
    nondeterministic: bool = False  # also cache requests with a temperature or tools
    semantic: bool = False
    threshold: float | None = None  # the semantic match's minimum similarity (None: the default)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> CachePolicy | None:
        if not data:
            return None
        threshold = data.get("threshold")
        return cls(ttl=int(data.get("ttl") or 0), scope=str(data.get("scope") or "workspace"),
                   nondeterministic=bool(data.get("nondeterministic")), semantic=bool(data.get("semantic")),
                   threshold=None if threshold is None else float(threshold))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ttl": self.ttl, "scope": self.scope, "nondeterministic": self.nondeterministic,
                               "semantic": self.semantic}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPolicy:
    key: LimitScope | None = None
    user: MemberLimits | None = None
    workspace: WorkspacePolicy | None = None
    cache: CachePolicy | None = None  # None: no response cache
    models: tuple[str, ...] | None = None  # the model groups the key may call (None: every one)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> KeyPolicy:
        """The policy as published in a key record (`{"key": {...}, "user": {...}, ...}`)."""
        if not data:
            return NO_POLICY
        models = data.get("models")
        return cls(key=LimitScope.from_wire(data.get("key")), user=MemberLimits.from_wire(data.get("user")),
                   workspace=WorkspacePolicy.from_wire(data.get("workspace")),
                   cache=CachePolicy.from_wire(data.get("cache")),
                   models=None if models is None else tuple(str(m) for m in models))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, part in (("key", self.key), ("user", self.user), ("workspace", self.workspace), ("cache", self.cache)):
            if part is not None:
                out[name] = part.to_wire()
        if self.models is not None:
            out["models"] = list(self.models)
        return out

    @property
    def cache_enabled(self) -> bool:
        return self.cache is not None

    @property
    def fail_open(self) -> bool:
        """Serve without limits while they cannot be checked (the workspace's choice)."""
        return self.workspace is not None and self.workspace.fail_open

    @property
    def hard_budget(self) -> bool:
        """Whether the key's or the workspace's budget refuses requests that could pass it."""
        return any(scope is not None and scope.budget is not None and scope.budget.hard
                   for scope in (self.key, self.workspace))

    @property
    def max_attempts_cap(self) -> int | None:
        """The most attempts a request may make, set by the workspace (None: no bound of its own)."""
        return None if self.workspace is None else self.workspace.max_attempts

    @property
    def overrides_allowed(self) -> bool:
        """Whether requests may send x-aiproxy-fallbacks and x-aiproxy-max-attempts."""
        return self.workspace is None or self.workspace.overrides

    def model_allowed(self, group: str) -> bool:
        """Whether the key may call this model group."""
        return self.models is None or group in self.models


NO_POLICY = KeyPolicy()
