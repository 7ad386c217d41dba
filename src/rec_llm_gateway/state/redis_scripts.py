"""The Lua scripts of the Redis store (each runs atomically in Redis: one round trip per admission).

Keys (``p`` is ``state.key_prefix``): ``r:<bucket>`` request log (zset, score = time), ``t:<bucket>``
token log with ``tk:<bucket>`` (id -> tokens) and ``ts:<bucket>`` (their sum), ``c:<bucket>``
concurrency slots (score = expiry), ``b:<budget>:<month>`` spend, ``rz:``/``rh:<budget>:<month>``
reservations (expiry, amount), ``w:<batch id>`` a written batch (until its writer confirms it, a day
at most: ``WRITE`` applies each batch once). Windows are 60 s; limits of -1 mean none.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["ADMIT", "ADMIT_SHA", "WRITE", "WRITE_SHA"]

ADMIT: Final = """
local p, id = ARGV[1], ARGV[2]
local now, ttl, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cut = now - 60
local b = 6 + n * 5
local bname = ARGV[b]
local rz, rh
if bname ~= '' then
  local month, limit, amount = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  rz, rh = p .. 'rz:' .. bname .. ':' .. month, p .. 'rh:' .. bname .. ':' .. month
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', rz, '-inf', now)) do redis.call('HDEL', rh, rid) end
  redis.call('ZREMRANGEBYSCORE', rz, '-inf', now)
  local spent = tonumber(redis.call('GET', p .. 'b:' .. bname .. ':' .. month) or '0')
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', rh)) do reserved = reserved + tonumber(v) end
  if spent >= limit then return {'monthly_budget_usd', bname, '0', tostring(spent), '0'} end
  if reserved > 0 and spent + reserved + amount > limit then
    return {'monthly_budget_usd', bname, '1', tostring(spent + reserved), '1'}
  end
end
for i = 0, n - 1 do
  local o = 6 + i * 5
  local name, rpm, tpm, conc = ARGV[o], tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local tokens = tonumber(ARGV[o + 4])
  if conc >= 0 then
    local ck = p .. 'c:' .. name
    redis.call('ZREMRANGEBYSCORE', ck, '-inf', now)
    if redis.call('ZCARD', ck) >= conc then return {'concurrent_requests', name, '1'} end
  end
  if rpm >= 0 then
    local rk = p .. 'r:' .. name
    redis.call('ZREMRANGEBYSCORE', rk, '-inf', cut)
    local used = redis.call('ZCARD', rk)
    if used >= rpm then
      local oldest = redis.call('ZRANGE', rk, used - rpm, used - rpm, 'WITHSCORES')
      return {'requests_per_minute', name, tostring(tonumber(oldest[2]) + 60 - now)}
    end
  end
  if tpm >= 0 then
    local tk, th, ts = p .. 't:' .. name, p .. 'tk:' .. name, p .. 'ts:' .. name
    local dead = redis.call('ZRANGEBYSCORE', tk, '-inf', cut)
    local sum = tonumber(redis.call('GET', ts) or '0')
    for _, rid in ipairs(dead) do
      sum = sum - tonumber(redis.call('HGET', th, rid) or '0')
      redis.call('HDEL', th, rid)
    end
    if #dead > 0 then
      redis.call('ZREMRANGEBYSCORE', tk, '-inf', cut)
      redis.call('SET', ts, tostring(sum))
    end
    if sum + tokens > tpm then
      local wait = 60
      if tokens <= tpm then
        local excess = sum + tokens - tpm
        local entries = redis.call('ZRANGE', tk, 0, -1, 'WITHSCORES')
        for j = 1, #entries, 2 do
          excess = excess - tonumber(redis.call('HGET', th, entries[j]) or '0')
          if excess <= 0 then
            wait = math.max(0, tonumber(entries[j + 1]) + 60 - now)
            break
          end
        end
      end
      return {'tokens_per_minute', name, tostring(wait)}
    end
  end
end
for i = 0, n - 1 do
  local o = 6 + i * 5
  local name, rpm, tpm, conc = ARGV[o], tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  if conc >= 0 then
    redis.call('ZADD', p .. 'c:' .. name, now + ttl, id)
    redis.call('EXPIRE', p .. 'c:' .. name, math.ceil(ttl) + 60)
  end
  if rpm >= 0 then
    redis.call('ZADD', p .. 'r:' .. name, now, id)
    redis.call('EXPIRE', p .. 'r:' .. name, 61)
  end
  if tpm >= 0 then
    local tk, th, ts = p .. 't:' .. name, p .. 'tk:' .. name, p .. 'ts:' .. name
    redis.call('ZADD', tk, now, id)
    redis.call('HSET', th, id, ARGV[o + 4])
    redis.call('INCRBYFLOAT', ts, ARGV[o + 4])
    redis.call('EXPIRE', tk, 61)
    redis.call('EXPIRE', th, 61)
    redis.call('EXPIRE', ts, 61)
  end
end
if bname ~= '' then
  redis.call('ZADD', rz, now + ttl, id)
  redis.call('HSET', rh, id, ARGV[b + 3])
  redis.call('EXPIRE', rz, math.ceil(ttl) + 60)
  redis.call('EXPIRE', rh, math.ceil(ttl) + 60)
end
return false
"""

WRITE: Final = """
local p, batch = ARGV[1], cjson.decode(ARGV[3])
for _, done in ipairs(batch.w) do redis.call('DEL', p .. 'w:' .. done) end
if ARGV[2] ~= '' and not redis.call('SET', p .. 'w:' .. ARGV[2], '1', 'NX', 'EX', 86400) then return 0 end
for _, s in ipairs(batch.s) do
  local id, tokens = s[1], s[2]
  for _, name in ipairs(s[3]) do
    redis.call('ZREM', p .. 'c:' .. name, id)
    if tokens ~= '' then
      local th = p .. 'tk:' .. name
      local old = redis.call('HGET', th, id)
      if old then
        redis.call('HSET', th, id, tokens)
        redis.call('INCRBYFLOAT', p .. 'ts:' .. name, tonumber(tokens) - tonumber(old))
      end
    end
  end
  if s[4] ~= '' then
    local bm = s[4] .. ':' .. s[5]
    redis.call('ZREM', p .. 'rz:' .. bm, id)
    redis.call('HDEL', p .. 'rh:' .. bm, id)
    if tonumber(s[6]) > 0 then redis.call('INCRBYFLOAT', p .. 'b:' .. bm, s[6]) end
  end
end
for _, b in ipairs(batch.b) do redis.call('INCRBYFLOAT', p .. 'b:' .. b[1] .. ':' .. b[2], b[3]) end
for _, u in ipairs(batch.u) do
  local key, field = p .. 'u:' .. u[1], u[2]
  for _, count in ipairs(u[3]) do redis.call('HINCRBY', key, field .. count[1], count[2]) end
  for _, sum in ipairs(u[4]) do redis.call('HINCRBYFLOAT', key, field .. sum[1], sum[2]) end
  redis.call('SADD', p .. 'udays', u[1])
end
for _, g in ipairs(batch.g) do redis.call('HSET', p .. 'sig', g[1], g[2]) end
return 1
"""

ADMIT_SHA: Final = hashlib.sha1(ADMIT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
WRITE_SHA: Final = hashlib.sha1(WRITE.encode()).hexdigest()  # noqa: S324
