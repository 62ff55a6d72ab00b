"""The Lua script `RedisStore` runs: one atomic step over every limit of a request.

It reads the clock with Redis' own `TIME`, so replicas whose clocks disagree still share one
timeline. It mirrors `MemoryStore.apply_sync`: KEYS are the specs' keys; ARGV[1] is the mode
("reserve" or "settle"), then (kind "b"|"d", limit, amount) per key. A bucket is a hash
{v: level, t: stamp}; a daily counter a hash {u: used, d: day number}. Returns
{ok, failed index (0-based, -1), retry_after, level...} with numbers as strings (Redis would
truncate Lua floats to integers).
"""

from __future__ import annotations

APPLY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local day = math.floor(now / 86400)
local mode = ARGV[1]
local n = #KEYS
local kinds, limits, amounts, levels = {}, {}, {}, {}
for i = 1, n do
  local kind = ARGV[2 + (i - 1) * 3]
  local limit = tonumber(ARGV[3 + (i - 1) * 3])
  local amount = tonumber(ARGV[4 + (i - 1) * 3])
  kinds[i], limits[i], amounts[i] = kind, limit, amount
  local level
  if kind == 'b' then
    local h = redis.call('HMGET', KEYS[i], 'v', 't')
    local v, ts = tonumber(h[1]), tonumber(h[2])
    if v == nil or ts == nil then
      level = limit
    else
      local dt = now - ts
      if dt < 0 then dt = 0 end
      level = math.min(limit, v + dt * limit / 60)
    end
  else
    local h = redis.call('HMGET', KEYS[i], 'u', 'd')
    local used = tonumber(h[1])
    if used == nil or tonumber(h[2]) ~= day then used = 0 end
    level = limit - used
  end
  levels[i] = level
end
if mode == 'reserve' then
  for i = 1, n do
    local refuse, wait = false, 0
    if kinds[i] == 'd' then
      refuse = levels[i] <= 0 or amounts[i] > levels[i]
      wait = 86400 - (now - day * 86400)
    else
      refuse = amounts[i] > 0 and amounts[i] > levels[i]
      if amounts[i] > limits[i] then wait = 60 else wait = (amounts[i] - levels[i]) * 60 / limits[i] end
    end
    if refuse then
      local out = {0, i - 1, tostring(wait)}
      for j = 1, n do out[#out + 1] = tostring(levels[j]) end
      return out
    end
  end
end
local out = {1, -1, '0'}
for i = 1, n do
  local new = math.min(limits[i], levels[i] - amounts[i])
  if kinds[i] == 'b' then
    redis.call('HSET', KEYS[i], 'v', tostring(new), 't', tostring(now))
    redis.call('EXPIRE', KEYS[i], 3600)
  else
    redis.call('HSET', KEYS[i], 'u', tostring(limits[i] - new), 'd', tostring(day))
    redis.call('EXPIRE', KEYS[i], 2 * 86400 + 3600)
  end
  out[#out + 1] = tostring(new)
end
return out
"""
