-- switchyard_seed_v1: raise a budget's settled spend to at least the ledger's figure and mark
-- it seeded. Taking the larger of the two never double-counts: both count the same requests.
--
-- KEYS: the budget's counters (see admit_v2).  ARGV: spent (nano-USD), ttl_ms.
-- Returns the spend now recorded.
local key = KEYS[1]
local spent = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', key, 'spent') or '0')
if spent > current then
  redis.call('HSET', key, 'spent', spent)
  current = spent
end
redis.call('HSET', key, 'seeded', '1')
if redis.call('PTTL', key) < tonumber(ARGV[2]) then redis.call('PEXPIRE', key, ARGV[2]) end
return current
