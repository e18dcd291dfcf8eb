#!lua flags=allow-oom
-- Take or keep the leader lease. A new leader gets a new fencing token (the fence
-- counter, incremented); the current leader renews its lease and keeps its token.
-- A standby candidate (a dry-run controller: its lease id's nonce starts with 'dry-')
-- takes only a free lease, and a real candidate takes the lease from a standby: a dry
-- run writes no plan, so its lead would freeze a fleet of real controllers.
-- allow-oom: at maxmemory Redis refuses SET, so no successor could take a free lease;
-- without a leader no one trims acknowledged entries, and a full Redis stayed full (a
-- lease is one short string and the fence one counter).
-- KEYS[1] leader key, KEYS[2] fence counter; ARGV[1] candidate id, ARGV[2] lease ms.
-- Returns {1, token} when the candidate renews its lease, {1, token, 1} when it takes the
-- lease (a new term), {0, token, current leader} otherwise.
local function standby(id)
  return string.find(id, '#dry%-[^#]*$') ~= nil
end
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if not current or (standby(current) and not standby(ARGV[1])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2]), 1}
end
return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), current}
