#!lua flags=allow-oom
-- Settle a worker's finished jobs in one call: ack, schedule retries, dead-letter.
-- allow-oom: at maxmemory Redis refuses ZADD and XADD, and a settle holding one retry
-- or dead letter would fail with all its acks, so the worker would stop draining the
-- queue that fills memory. A retry or dead letter moves a job that is already in
-- Redis; producers, whose writes add jobs, stay refused.
-- XACK does no owner check, and a worker paused past min_idle must not ack an entry
-- that another worker has since claimed (REDIS-FACTS). The worker asks for the check
-- (ARGV[3] = 1) whenever it has held the entries long enough for a claim to be
-- possible; otherwise no other consumer can own them and the check is skipped.
-- KEYS[1] jobs stream, KEYS[2] delayed zset, KEYS[3] dead-letter stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] check ownership (1/0), then the number of
-- acks and the acked ids; then the number of retries and, per retry, id, delay ms,
-- msgpack job; then the number of dead letters and, per dead letter, id, raw job,
-- reason, traceback, attempts, job id, task.
-- Returns the ids given that this consumer no longer owns (nothing was done to them).
-- A dead-letter key of another type (someone SET it) made the XADD below fail after
-- the retries before it were written and before any ack: the worker retried that
-- settle for ever and ran nothing more, and each try scheduled the retries again.
-- With dead letters to write, such a key fails the call before it writes anything,
-- with the error `DLQTYPE <type>`; the caller settles the rest without them.
local n_acks = tonumber(ARGV[4])
local n_dead = tonumber(ARGV[6 + n_acks + 3 * tonumber(ARGV[5 + n_acks])])
if n_dead > 0 then
  local dlq_type = redis.call('TYPE', KEYS[3])['ok']
  if dlq_type ~= 'stream' and dlq_type ~= 'none' then
    return redis.error_reply('DLQTYPE ' .. dlq_type)
  end
end

local owned = nil
if ARGV[3] == '1' then
  -- A worker settles before it fetches again, so its whole pending list is about one
  -- batch: reading all of it is cheaper than one XPENDING per entry.
  owned = {}
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000000, ARGV[2])
  for _, p in ipairs(mine) do owned[p[1]] = true end
end

local lost = {}
-- Without the owner check, a retry or dead letter is written only for an entry still
-- pending: a settle resent after a lost reply must not schedule it or dead-letter it
-- twice (acks are idempotent anyway).
local function own(id, write)
  if owned == nil then
    return not write or redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1] ~= nil
  end
  if owned[id] then return true end
  table.insert(lost, id)
  return false
end

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local a = 4
local acks = {}
for i = 1, tonumber(ARGV[a]) do
  if own(ARGV[a + i], false) then table.insert(acks, ARGV[a + i]) end
end
a = a + tonumber(ARGV[a]) + 1
for _ = 1, tonumber(ARGV[a]) do
  local id = ARGV[a + 1]
  if own(id, true) then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[a + 2]), ARGV[a + 3])
    table.insert(acks, id)
  end
  a = a + 3
end
a = a + 1
for _ = 1, tonumber(ARGV[a]) do
  local id = ARGV[a + 1]
  if own(id, true) then
    redis.call('XADD', KEYS[3], '*', 'j', ARGV[a + 2], 'reason', ARGV[a + 3],
      'traceback', ARGV[a + 4], 'attempts', ARGV[a + 5], 'job_id', ARGV[a + 6],
      'task', ARGV[a + 7], 'entry_id', id, 'at_ms', now)
    table.insert(acks, id)
  end
  a = a + 7
end
-- unpack() fails past about 8000 values (Lua's C stack), and a batch may hold 10000.
for i = 1, #acks, 1000 do
  redis.call('XACK', KEYS[1], ARGV[1], unpack(acks, i, math.min(i + 999, #acks)))
end
return lost
