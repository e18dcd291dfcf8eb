-- Apply one worker's telemetry deltas once: a retried flush (same sequence) is a no-op.
-- KEYS[1] the worker's flush-sequence key, KEYS[2..] window hashes
-- ARGV[1] sequence, ARGV[2] TTL s, then per window: field count n, then n field/delta
-- pairs. Returns 1 when applied, 0 when this sequence was already applied.
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local a = 3
for k = 2, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
return 1
