-- Take or keep the leader lease. A new leader gets a new fencing token (the fence
-- counter, incremented); the current leader renews its lease and keeps its token.
-- KEYS[1] leader key, KEYS[2] fence counter; ARGV[1] candidate id, ARGV[2] lease ms.
-- Returns {1, token} when the candidate leads, {0, token, current leader} otherwise.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), current}
