-- Charge one attempt to a reclaimed entry as its worker starts running it: add one to
-- its delivery count (reclaim.lua claims without counting), if the worker still owns
-- it. The count is what max_attempts is checked against, and it survives the worker
-- being killed while running the job (REDIS-FACTS).
-- KEYS[1] jobs stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id.
-- Returns the new delivery count, or 0 if another consumer owns the entry now.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not p[1] or p[1][2] ~= ARGV[2] then return 0 end
local count = p[1][4] + 1
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'RETRYCOUNT', count, 'JUSTID')
return count
