--[[
  One keyset step over a sorted set in (score, member) order: up to n entries strictly after the
  cursor (score, member) and with score within max. Ties on the cursor's score are resolved by a
  binary search of the member among them, inside this one script: no offset can shift between
  calls when entries are removed meanwhile, and a page costs O(log n) however many ties there
  are. The cursor's member need not be in the set any more.

  Input:
    KEYS[1] sorted set
    ARGV[1] cursor score ('' for the start)
    ARGV[2] cursor member
    ARGV[3] max, as ZRANGE BYSCORE takes it ('+inf', '-inf', '(<n>' or '<n>')
    ARGV[4] n

  Output: a flat list member, score, member, score, ...
]]
local rcall = redis.call
local key = KEYS[1]
local afterScore = ARGV[1]
local max = ARGV[3]
local n = tonumber(ARGV[4])

-- Byte order, as a sorted set orders the members of one score. Not Lua's `<=`, which follows
-- the server's collation locale.
local function notAfter(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return la <= lb
end

local start = 0
if afterScore ~= '' then
  local lo = rcall('ZCOUNT', key, '-inf', '(' .. afterScore)
  local hi = lo + rcall('ZCOUNT', key, afterScore, afterScore)
  local afterMember = ARGV[2]
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if notAfter(rcall('ZRANGE', key, mid, mid)[1], afterMember) then lo = mid + 1 else hi = mid end
  end
  start = lo
end

-- The entries from `start` on are ordered; keep those within max.
local limit
if max == '+inf' then
  limit = math.huge
elseif max == '-inf' then
  return {}
elseif string.sub(max, 1, 1) == '(' then
  limit = tonumber(string.sub(max, 2))
else
  limit = tonumber(max)
end
local exclusive = string.sub(max, 1, 1) == '('
local reply = rcall('ZRANGE', key, start, start + n - 1, 'WITHSCORES')
local out = {}
for i = 1, #reply, 2 do
  local score = tonumber(reply[i + 1])
  if score > limit or (exclusive and score == limit) then break end
  out[#out + 1] = reply[i]
  out[#out + 1] = reply[i + 1]
end
return out
