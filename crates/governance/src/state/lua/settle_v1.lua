-- switchyard_settle_v1: replace an admission's estimates with its actual usage, atomically.
-- A release (client gone, error before upstream) is a settle with tokens = 0 and cost = 0.
--
-- KEYS: NT token-log weight hashes (see admit_v1), then NB budget hashes.
-- ARGV: id, NT, NB, actual_tokens, actual_cost, per budget: reserved, limit, hard (1/0), ttl_ms.
-- Returns the 0-based indices of alert budgets crossed by this settlement.
local id = ARGV[1]
local nt = tonumber(ARGV[2])
local nb = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cost = ARGV[5]

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
  local key = KEYS[nt + j + 1]
  local base = 6 + 4 * j
  local held = tonumber(ARGV[base])
  local limit = tonumber(ARGV[base + 1])
  local hard = ARGV[base + 2] == '1'
  local ttl = tonumber(ARGV[base + 3])
  local reserved = redis.call('HINCRBY', key, 'reserved', -held)
  if reserved < 0 then
    redis.call('HSET', key, 'reserved', 0)
    reserved = 0
  end
  local spent = redis.call('HINCRBY', key, 'spent', cost)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  if not hard and spent + reserved > limit and redis.call('HSETNX', key, 'alerted', '1') == 1 then
    table.insert(crossed, j)
  end
end
return crossed
