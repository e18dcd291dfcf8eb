-- Claim entries idle longer than min_idle (their worker is presumed dead) and report
-- entries deleted while pending, which are lost jobs (REDIS-FACTS).
-- KEYS[1] jobs stream, KEYS[2] lost-entries stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] cursor, ARGV[5] count
-- Returns {next cursor, entries, delivery counts (same order), deleted ids}.
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local entries, deleted = r[2], r[3] or {}
for _, id in ipairs(deleted) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'entry_id', id,
    'found_by', ARGV[2])
end
local deliveries = {}
if #entries > 0 then
  local counts = {}
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entries[1][1],
    entries[#entries][1], #entries, ARGV[2])
  for _, e in ipairs(p) do counts[e[1]] = e[4] end
  for i, e in ipairs(entries) do deliveries[i] = counts[e[1]] or 1 end
end
return {r[1], entries, deliveries, deleted}
