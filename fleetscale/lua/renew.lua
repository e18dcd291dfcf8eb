-- Renew the lease on entries a worker is still running: reset their idle time so
-- XAUTOCLAIM leaves them alone, but only if the worker still owns them (XCLAIM does
-- no owner check). JUSTID does not bump the delivery counter.
-- KEYS[1] jobs stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] reset the idle time
-- (1) or only check ownership (0, a worker with lease renewal off), ARGV[4..] ids.
-- Returns the ids another consumer now owns. Ids no longer pending at all (acked in
-- the meantime) are skipped: there is nothing left to renew or to lose.
-- A group that is gone (Redis lost its data) took every pending entry with it: all
-- the ids are lost. (An error here came before the fetch that creates the group
-- again, and a worker resuming an interrupted batch retried it for ever.)
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p['err'] then
    if string.find(p['err'], 'NOGROUP', 1, true) then
      return {unpack(ARGV, 4)}
    end
    return p
  end
  if p[1] then
    if p[1][2] ~= ARGV[2] then
      table.insert(lost, id)
    elseif ARGV[3] == '1' then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    end
  end
end
return lost
