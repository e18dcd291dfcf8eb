#!lua flags=allow-oom
-- Register a live member (a worker, or a host's controller) or refresh it, and prune
-- members whose heartbeat lapsed. With an owner (a controller's lease id), a member
-- still live under another owner is not taken over: two controllers started with one
-- host id would each run that host's quota (found by the fault suite).
-- allow-oom: at maxmemory Redis refuses ZADD and HSET, so every host and worker dropped
-- out of the registry after its TTL and the leader moved their quotas; a heartbeat
-- rewrites a member's few fields, and only a new member adds any memory.
-- The info hash is replaced, not added to: a member that took over a registration (a
-- hash of a version that wrote no owner, say) keeps none of its predecessor's fields.
-- KEYS[1] members zset, KEYS[2] the member's info hash
-- ARGV[1] member id, ARGV[2] TTL ms, ARGV[3] owner ('' = no check), then field/value
-- pairs for the info hash.
-- Returns the Redis time in ms, or {owner, pid, hostname} of the live other owner.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[3] ~= '' then
  local other = redis.call('HMGET', KEYS[2], 'owner', 'pid', 'hostname')
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if other[1] and other[1] ~= ARGV[3] and expiry and tonumber(expiry) > now then
    return {other[1], other[2] or '', other[3] or ''}
  end
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
redis.call('DEL', KEYS[2])
if #ARGV > 3 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'owner', ARGV[3])
end
redis.call('HSET', KEYS[2], 'seen_ms', now)
redis.call('PEXPIRE', KEYS[2], ttl)
return now
