-- Add a batch of jobs to the stream, in order: one call instead of one XADD each.
-- KEYS[1] jobs stream; ARGV the msgpack jobs. Returns their entry ids, in order.
-- A script runs whole: at maxmemory Redis refuses its first XADD, so either the
-- batch goes in or none of it does (a pipeline of XADDs could stop part-way).
local ids = {}
for i = 1, #ARGV do
  ids[i] = redis.call('XADD', KEYS[1], '*', 'j', ARGV[i])
end
return ids
