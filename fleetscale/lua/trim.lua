-- Trim the job stream below the oldest entry that any consumer group still needs:
-- its oldest pending entry, or (with nothing pending) whatever follows its last
-- delivered entry. Never trims a pending or undelivered entry; does nothing while
-- the stream has no group. KEYS[1] jobs stream. Returns the number of entries removed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local function before(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local keep = nil
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local needed
  if f['pending'] > 0 then
    needed = redis.call('XPENDING', KEYS[1], f['name'])[2]
  else
    local ms, seq = parse(f['last-delivered-id'])
    needed = ms .. '-' .. (seq + 1)
  end
  if keep == nil or before(needed, keep) then keep = needed end
end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
