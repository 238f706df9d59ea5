-- switchyard_settle_v2: replace an admission's estimates with its actual usage, atomically and
-- at most once per admission. A release (client gone, error before upstream, or an admission
-- the gateway gave up waiting for) is a settle with tokens = 0 and cost = 0.
--
-- KEYS: NT token-log weight hashes (see admit_v2), then per budget its counters, holds and
--       amounts (see admit_v2), then the admission's settled marker.
-- ARGV: id, NT, NB, actual_tokens, actual_cost, marker_ttl_ms, per budget: limit, hard (1/0), ttl_ms.
-- Returns {-1} when this admission was already settled (nothing changes), else the 0-based
-- indices of alert budgets crossed by this settlement.
local id = ARGV[1]
local nt = tonumber(ARGV[2])
local nb = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cost = ARGV[5]
local done = KEYS[nt + 3 * nb + 1]

-- The marker also makes a late copy of this admission refuse (admit_v2 returns {4}).
if not redis.call('SET', done, '1', 'NX', 'PX', ARGV[6]) then return {-1} end

for i = 1, nt do
  local w = KEYS[i]
  local old = redis.call('HGET', w, id)
  -- Gone means the entry already left the window: nothing to adjust.
  if old then
    redis.call('HSET', w, id, tokens)
    redis.call('HINCRBY', w, 'sum', tokens - tonumber(old))
  end
end

local crossed = {}
for j = 0, nb - 1 do
  local key, holds, amounts = KEYS[nt + 3 * j + 1], KEYS[nt + 3 * j + 2], KEYS[nt + 3 * j + 3]
  local base = 7 + 3 * j
  local limit = tonumber(ARGV[base])
  local hard = ARGV[base + 1] == '1'
  local ttl = tonumber(ARGV[base + 2])
  -- The hold's own amount; gone means it expired (already released) or never got here.
  local held = redis.call('HGET', amounts, id)
  if held then
    redis.call('HDEL', amounts, id)
    redis.call('ZREM', holds, id)
    if redis.call('HINCRBY', key, 'reserved', -tonumber(held)) < 0 then
      redis.call('HSET', key, 'reserved', 0)
    end
  end
  local spent = redis.call('HINCRBY', key, 'spent', cost)
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  if not hard and spent + reserved > limit and redis.call('HSETNX', key, 'alerted', '1') == 1 then
    table.insert(crossed, j)
  end
end
return crossed
