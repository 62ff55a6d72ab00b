"""Rate limits and quotas of the gateway: token buckets per key and team, reserve then settle."""

from workbench.serve.limits.config import LimitsConfig, TeamLimits
from workbench.serve.limits.limiter import Limiter, Reservation, limiter_from
from workbench.serve.limits.redis_store import RedisStore
from workbench.serve.limits.store import MemoryStore, Spec

__all__ = ["Limiter", "LimitsConfig", "MemoryStore", "RedisStore", "Reservation", "Spec", "TeamLimits", "limiter_from"]
