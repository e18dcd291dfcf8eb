-- Move one dead letter back into the jobs stream, exactly once: only a replay that
-- finds the letter still there adds its job, so replays racing over one letter add it
-- once (a script runs alone). XADD before XDEL: a script's writes before an error
-- stay, and a jobs key of another type failed the XADD after the letter was deleted.
-- KEYS[1] jobs stream, KEYS[2] dead-letter stream; ARGV[1] letter id, ARGV[2] the job.
-- Returns 1 when this call moved it, 0 when it was gone (replayed or purged meanwhile).
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'j', ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[1])
return 1
