-- switchyard_admit_v2: check and consume every rate limit and budget of one request, atomically.
--
-- KEYS: for each of the NR rate limits, its log (ZSET member=admission id, score=ms) then its
--       weights (HASH member=weight, plus field `sum`); then for each of the NB budgets its
--       counters (HASH spent, reserved, seeded, alerted, expired_holds, expired_nanos), its
--       holds (ZSET member=admission id, score=expiry ms) and their amounts (HASH id=amount);
--       then this admission's settled marker, then the live-process set (ZSET proc=last seen).
-- ARGV: now_ms ('' = Redis TIME), id, NR, NB, hold_ttl_ms, process id,
--       per rate: limit, amount, window_ms; per budget: limit, amount, hard (1/0), ttl_ms.
-- Returns {1, processes, NB', then spent, reserved per budget (NB' pairs), crossed alert
--       budget indices...} | {0, rate index, retry_after_ms} | {2, budget index, spent, reserved}
--       | {3, budget index} (not seeded: seed it from the ledger, then admit again)
--       | {4} (already settled or released: a late copy of an abandoned admission)
--       (indices are 0-based; nothing is consumed unless the reply starts with 1)
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes entries with score <= cutoff and their weights; returns the remaining sum.
local function prune(z, w, cutoff)
  while true do
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff, 'LIMIT', 0, 1000)
    if #old == 0 then break end
    local weights = redis.call('HMGET', w, unpack(old))
    local total = 0
    for _, v in ipairs(weights) do total = total + (tonumber(v) or 0) end
    redis.call('ZREM', z, unpack(old))
    redis.call('HDEL', w, unpack(old))
    if total ~= 0 then redis.call('HINCRBY', w, 'sum', -total) end
  end
  return tonumber(redis.call('HGET', w, 'sum') or '0')
end

-- Releases holds whose expiry passed, counting them as expired.
local function expire(key, holds, amounts, now)
  while true do
    local old = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 1000)
    if #old == 0 then return end
    local values = redis.call('HMGET', amounts, unpack(old))
    local total = 0
    for _, v in ipairs(values) do total = total + (tonumber(v) or 0) end
    redis.call('ZREM', holds, unpack(old))
    redis.call('HDEL', amounts, unpack(old))
    if redis.call('HINCRBY', key, 'reserved', -total) < 0 then
      redis.call('HSET', key, 'reserved', 0)
    end
    redis.call('HINCRBY', key, 'expired_holds', #old)
    redis.call('HINCRBY', key, 'expired_nanos', total)
  end
end

local now = now_ms()
local id = ARGV[2]
local nr = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local hold_ttl = tonumber(ARGV[5])
local a = 7
local done = KEYS[2 * nr + 3 * nb + 1]
local procs = KEYS[2 * nr + 3 * nb + 2]

redis.call('ZADD', procs, now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', procs, '-inf', now - 60000)
redis.call('PEXPIRE', procs, 120000)
local processes = redis.call('ZCARD', procs)

if redis.call('EXISTS', done) == 1 then return {4} end
if nb > 0 and redis.call('ZSCORE', KEYS[2 * nr + 2], id) then return {1, processes, 0} end

for i = 0, nr - 1 do
  local z, w = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local limit = tonumber(ARGV[a + 3 * i])
  local amount = tonumber(ARGV[a + 3 * i + 1])
  local window = tonumber(ARGV[a + 3 * i + 2])
  local sum = prune(z, w, now - window)
  if sum + amount > limit then
    if amount > limit then return {0, i, window} end
    local need = sum + amount - limit
    local freed = 0
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    for j = 1, #entries, 2 do
      freed = freed + (tonumber(redis.call('HGET', w, entries[j])) or 0)
      if freed >= need then
        return {0, i, math.max(1, tonumber(entries[j + 1]) + window - now)}
      end
    end
    return {0, i, window}
  end
end

local b = a + 3 * nr
for j = 0, nb - 1 do
  local key, holds, amounts = KEYS[2 * nr + 3 * j + 1], KEYS[2 * nr + 3 * j + 2], KEYS[2 * nr + 3 * j + 3]
  if redis.call('HEXISTS', key, 'seeded') == 0 then return {3, j} end
  expire(key, holds, amounts, now)
  local limit = tonumber(ARGV[b + 4 * j])
  local amount = tonumber(ARGV[b + 4 * j + 1])
  local hard = ARGV[b + 4 * j + 2] == '1'
  local cur = redis.call('HMGET', key, 'spent', 'reserved')
  local spent, reserved = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
  if hard and spent + reserved + amount > limit then
    return {2, j, spent, reserved}
  end
end

for i = 0, nr - 1 do
  local z, w = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local amount = ARGV[a + 3 * i + 1]
  local window = tonumber(ARGV[a + 3 * i + 2])
  redis.call('ZADD', z, now, id)
  redis.call('HSET', w, id, amount)
  redis.call('HINCRBY', w, 'sum', amount)
  redis.call('PEXPIRE', z, window + 60000)
  redis.call('PEXPIRE', w, window + 60000)
end

local result = {1, processes, nb}
local crossed = {}
for j = 0, nb - 1 do
  local key, holds, amounts = KEYS[2 * nr + 3 * j + 1], KEYS[2 * nr + 3 * j + 2], KEYS[2 * nr + 3 * j + 3]
  local limit = tonumber(ARGV[b + 4 * j])
  local amount = ARGV[b + 4 * j + 1]
  local hard = ARGV[b + 4 * j + 2] == '1'
  local ttl = tonumber(ARGV[b + 4 * j + 3])
  local reserved = redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('ZADD', holds, now + hold_ttl, id)
  redis.call('HSET', amounts, id, amount)
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  for _, k in ipairs({key, holds, amounts}) do
    if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
  end
  table.insert(result, spent)
  table.insert(result, reserved)
  if not hard and spent + reserved > limit and redis.call('HSETNX', key, 'alerted', '1') == 1 then
    table.insert(crossed, j)
  end
end
for _, j in ipairs(crossed) do table.insert(result, j) end
return result
