-- Claim entries idle longer than min_idle (their worker is presumed dead) and report
-- entries deleted while pending, which are lost jobs (REDIS-FACTS).
-- JUSTID leaves each entry's delivery count as it was: the previous holder may have
-- died before it started a batch it had just reclaimed, so the attempt is charged
-- only when a worker starts the entry (charge.lua). (The XREADGROUP that first
-- delivered an entry counted one, started or not.)
-- KEYS[1] jobs stream, KEYS[2] lost-entries stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] cursor, ARGV[5] count
-- Returns {next cursor, entries, delivery counts (same order), deleted ids}; nothing
-- (cursor 0-0) when the group does not exist.
-- A group that is gone (Redis lost its data: restarted without persistence, flushed,
-- failed over) has nothing to reclaim: an error here came before every fetch, so a
-- worker that found the loss at a reclaim retried it for ever and never reached the
-- fetch that creates the group again.
local r = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
if r['err'] then
  if string.find(r['err'], 'NOGROUP', 1, true) then return {'0-0', {}, {}, {}} end
  return r
end
local ids, deleted = r[2], r[3] or {}
for _, id in ipairs(deleted) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'entry_id', id,
    'found_by', ARGV[2])
end
local entries, deliveries = {}, {}
for i, id in ipairs(ids) do
  entries[i] = redis.call('XRANGE', KEYS[1], id, id)[1]
  deliveries[i] = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1][4]
end
return {r[1], entries, deliveries, deleted}
