-- Delete consumers that have nothing pending and have been idle at least a limit.
-- A consumer with pending entries is never deleted: XGROUP DELCONSUMER would drop
-- them for good (REDIS-FACTS). KEYS[1] jobs stream; ARGV[1] group, ARGV[2] idle ms.
-- Returns the number of consumers deleted.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
local deleted = 0
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    deleted = deleted + 1
  end
end
return deleted
