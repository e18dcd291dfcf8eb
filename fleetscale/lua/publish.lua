#!lua flags=allow-oom
-- Write the leader's plan and log its decision, but only with the current fencing
-- token: a deposed leader that wakes up late cannot overwrite its successor's plan.
-- KEYS[1] leader key, KEYS[2] fence counter, KEYS[3] plan, KEYS[4] decision log
-- ARGV[1] leader id, ARGV[2] token, ARGV[3] plan JSON ("" = keep the plan: dry run),
-- ARGV[4] decision JSON. Returns 1 when written, 0 when fenced off.
-- allow-oom: at maxmemory Redis refuses SET and XADD, and a full queue is when the fleet
-- must grow to drain it; the plan replaces the last and the log is capped at about
-- 1000 records, so this adds little.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'd', ARGV[4])
return 1
