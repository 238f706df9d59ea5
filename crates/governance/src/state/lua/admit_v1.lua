-- switchyard_admit_v1: check and consume every rate limit and budget of one request, atomically.
--
-- KEYS: for each of the NR rate limits, its log (ZSET member=admission id, score=ms) then its
--       weights (HASH member=weight, plus field `sum`); then NB budget hashes (spent, reserved,
--       alerted).
-- ARGV: now_ms ('' = Redis TIME), id, NR, NB,
--       per rate: limit, amount, window_ms; per budget: limit, amount, hard (1/0), ttl_ms.
-- Returns {1, crossed alert budget indices...} | {0, rate index, retry_after_ms}
--       | {2, budget index, spent, reserved}   (indices are 0-based)
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

local now = now_ms()
local id = ARGV[2]
local nr = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local a = 5

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
  local key = KEYS[2 * nr + j + 1]
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

local result = {1}
for j = 0, nb - 1 do
  local key = KEYS[2 * nr + j + 1]
  local limit = tonumber(ARGV[b + 4 * j])
  local amount = ARGV[b + 4 * j + 1]
  local hard = ARGV[b + 4 * j + 2] == '1'
  local ttl = tonumber(ARGV[b + 4 * j + 3])
  local reserved = redis.call('HINCRBY', key, 'reserved', amount)
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  if not hard and spent + reserved > limit and redis.call('HSETNX', key, 'alerted', '1') == 1 then
    table.insert(result, j)
  end
end
return result
