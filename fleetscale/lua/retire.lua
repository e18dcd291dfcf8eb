-- Unregister a worker that is exiting: drop it from the registry, and delete its
-- consumer only if it has nothing pending (XGROUP DELCONSUMER drops pending entries
-- for good — REDIS-FACTS). KEYS[1] jobs stream, KEYS[2] workers zset,
-- KEYS[3] worker info hash; ARGV[1] group, ARGV[2] worker id.
-- Returns the number of entries it still had pending (0 = consumer deleted), or -1
-- when the stream is there without the group: Redis lost its data, the pending
-- entries with it (renew.lua and reclaim.lua report those lost), and there is no
-- consumer left to delete.
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if p['err'] then
  if string.find(p['err'], 'NOGROUP', 1, true) then return -1 end
  return p
end
if #p > 0 then
  return #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 100000, ARGV[2])
end
local ok = pcall(redis.call, 'XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 0
