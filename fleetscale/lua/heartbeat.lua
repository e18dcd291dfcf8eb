-- Register a live worker (or refresh it) and prune workers whose heartbeat lapsed.
-- KEYS[1] workers zset, KEYS[2] the worker's info hash
-- ARGV[1] worker id, ARGV[2] TTL ms, then field/value pairs for the info hash.
-- Returns the Redis time in ms.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if #ARGV > 2 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 3))
end
redis.call('HSET', KEYS[2], 'seen_ms', now)
redis.call('PEXPIRE', KEYS[2], ttl)
return now
