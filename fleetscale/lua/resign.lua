-- Give up the leader lease, if this candidate holds it (a clean shutdown).
-- KEYS[1] leader key; ARGV[1] candidate id. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
