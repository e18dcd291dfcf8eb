-- Submit one job, atomically checking backpressure and an explicit job id.
-- KEYS[1] jobs stream, KEYS[2] delayed zset, KEYS[3] (optional) job-id key
-- ARGV[1] msgpack job, ARGV[2] delay ms (0 = now), ARGV[3] job-id key TTL s,
-- ARGV[4] max backlog (0 = no limit), ARGV[5] consumer group name
-- The job-id key holds "<ref> <sha1 of the job>": resubmitting the same job is a no-op
-- (a retry), while a different job under a known id is refused rather than silently
-- dropped (found by the fault suite: the producer reported it submitted, it never ran).
-- Returns {1, ref} when added, {0, ref} when the same job was already submitted,
-- {-2, ref} when the id is known with a different job, {-1, backlog} when the backlog
-- is at or above the limit. ref = entry id or "delayed".
-- An empty ARGV[1] (no job) only measures: returns {2, backlog}, writing nothing.

-- The backlog: jobs queued or running, the group's lag plus its pending entries.
-- Without the group nothing was read: the whole stream. Redis reports no lag after an
-- XDEL of an entry the group has not read yet; then the smaller of two upper bounds:
-- the entries added but not read by the group (counting the deleted ones) plus those
-- pending, and the stream length, which already counts the pending entries (adding
-- them to it again made 3 jobs look like 11) and the acknowledged ones not yet trimmed.
local function fields(reply)
  local f = {}
  for i = 1, #reply, 2 do f[reply[i]] = reply[i + 1] end
  return f
end

local function backlog()
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local length = redis.call('XLEN', KEYS[1])
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = fields(g)
    if f['name'] == ARGV[5] then
      if f['lag'] then return f['lag'] + f['pending'] end
      -- pcall: an ACL role without XINFO STREAM gets the stream length.
      local stream = redis.pcall('XINFO', 'STREAM', KEYS[1])
      if f['entries-read'] and not stream.err then
        local unread = fields(stream)['entries-added'] - f['entries-read']
        return math.min(length, unread + f['pending'])
      end
    end
  end
  return length
end

if ARGV[1] == '' then return {2, backlog()} end

local digest = redis.sha1hex(ARGV[1])
if #KEYS == 3 then
  local known = redis.call('GET', KEYS[3])
  if known then
    local ref, sum = string.match(known, '^(%S+) (%x+)$')
    if sum and sum ~= digest then return {-2, ref} end
    return {0, ref or known}
  end
end
local limit = tonumber(ARGV[4])
if limit > 0 then
  local b = backlog()
  if b >= limit then return {-1, b} end
end
local ref
local delay = tonumber(ARGV[2])
if delay > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000) + delay, ARGV[1])
  ref = 'delayed'
else
  ref = redis.call('XADD', KEYS[1], '*', 'j', ARGV[1])
end
if #KEYS == 3 then
  redis.call('SET', KEYS[3], ref .. ' ' .. digest, 'EX', ARGV[3])
end
return {1, ref}
