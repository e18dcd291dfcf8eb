-- Drop a member now (a clean exit), unless another owner registered it meanwhile: a
-- controller paused past its registration, whose host id a new controller then took,
-- must not unregister the new one when it stops.
-- KEYS[1] members zset, KEYS[2] the member's info hash; ARGV[1] member id, ARGV[2]
-- owner ('' = no check). Returns 1 when dropped, 0 when another owner holds it.
if ARGV[2] ~= '' then
  local owner = redis.call('HGET', KEYS[2], 'owner')
  if owner and owner ~= ARGV[2] then return 0 end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
