-- Read the stream's load signals at one instant, and keep a history of entries-added
-- so any reader can compute the arrival rate.
-- KEYS[1] jobs stream, KEYS[2] arrivals zset, KEYS[3] workers zset
-- ARGV[1] group, ARGV[2] history ms, ARGV[3] oldest sample wanted, ms before now
-- Returns {now ms, exists, entries-added, lag (or -1), pending, head entry id or "",
--          live workers, {sample ms, sample count} of the oldest sample in range}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local live = redis.call('ZCOUNT', KEYS[3], now, '+inf')
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {now, 0, 0, 0, 0, '', live, {}}
end
local s = redis.call('XINFO', 'STREAM', KEYS[1])
local info = {}
for i = 1, #s, 2 do info[s[i]] = s[i + 1] end
local added = info['entries-added']
local lag, pending, last = -1, 0, nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then
    lag = f['lag'] or -1
    pending = f['pending']
    last = f['last-delivered-id']
  end
end
local head = ''
local first = redis.call('XRANGE', KEYS[1], last and ('(' .. last) or '-', '+', 'COUNT', 1)
if first[1] then head = first[1][1] end
if last == nil then lag = info['length'] end

local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if not newest[2] or now - tonumber(newest[2]) >= 1000 then
  -- pcall: at maxmemory (noeviction) Redis refuses the ZADD; the reading must still
  -- work then (status, the leader's decision), with the rate from older samples.
  redis.pcall('ZADD', KEYS[2], now, now .. ':' .. added)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
-- The oldest sample in range; when that is under a second old (samples are a second
-- or more apart, so one may have just left the range), the newest one before it.
local since = now - tonumber(ARGV[3])
local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], since, '+inf', 'LIMIT', 0, 1)
if not oldest[1] or now - tonumber(string.match(oldest[1], '^%d+')) < 1000 then
  local before = redis.call('ZRANGE', KEYS[2], '(' .. since, '-inf', 'BYSCORE', 'REV',
    'LIMIT', 0, 1)
  if before[1] then oldest = before end
end
return {now, 1, added, lag, pending, head, live, oldest}
