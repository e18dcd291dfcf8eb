-- Submit one job, atomically checking backpressure and an explicit job id.
-- KEYS[1] jobs stream, KEYS[2] delayed zset, KEYS[3] (optional) job-id key
-- ARGV[1] msgpack job, ARGV[2] delay ms (0 = now), ARGV[3] dedup TTL s,
-- ARGV[4] max backlog (0 = no limit), ARGV[5] consumer group name
-- The job-id key holds "<ref> <sha1 of the job>": resubmitting the same job is a no-op
-- (a retry), while a different job under a known id is refused rather than silently
-- dropped (found by the fault suite: the producer reported it submitted, it never ran).
-- Returns {1, ref} when added, {0, ref} when the same job was already submitted,
-- {-2, ref} when the id is known with a different job, {-1, backlog} when the backlog
-- is at or above the limit. ref = entry id or "delayed".
local function backlog()
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == ARGV[5] then
      local lag = f['lag']
      if not lag then lag = redis.call('XLEN', KEYS[1]) end
      return lag + f['pending']
    end
  end
  return redis.call('XLEN', KEYS[1])
end

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
  redis.call('SET', KEYS[3], ref .. ' ' .. digest, 'EX',
    math.ceil(tonumber(ARGV[3]) + delay / 1000))
end
return {1, ref}
