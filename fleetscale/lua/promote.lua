-- Move due jobs from the delayed set into the stream, each exactly once.
-- KEYS[1] jobs stream, KEYS[2] delayed zset; ARGV[1] the most jobs to move.
-- Returns the number moved.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'j', job)
  redis.call('ZREM', KEYS[2], job)
end
return #due
