--[[
  Compare-and-set of a live (non-terminal) record on its version, with index maintenance.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  (the index keys, as in create-2.lua)

    ARGV[1] expected version
    ARGV[2] new version
    ARGV[3] record JSON
    ARGV[4] domain
    ARGV[5] createdAt
    ARGV[6] dueAt when the record belongs in the stuck index, '' otherwise

  Output:
     0  written
    -1  no such record
     n  the stored version n differs from the expected one
]]
--- @include "casRead"
--- @include "stuckMark"

local rcall = redis.call
local bp = KEYS[2]
local xid = string.sub(KEYS[1], #bp + 4)
local cur, lost = casRead(KEYS[1], ARGV[1], 'd', 'c', 't', 's')
if not cur then return lost end

local domain = ARGV[4]
local dueAt = ARGV[6]
-- Where the stuck index has the record now, if the hash's mark still says so (see stuckMark).
local indexed = cur[5]
if cur[2] ~= domain or cur[3] ~= ARGV[5] then
  -- Rare: the domain or createdAt changed. Move the index entries, keep the fields in step.
  if cur[2] ~= domain then
    rcall('ZREM', bp .. 'stuck:' .. cur[2], xid)
    rcall('ZREM', bp .. 'dom:' .. cur[2], xid)
    -- The mark was about the old domain's index.
    indexed = false
  end
  rcall('ZADD', bp .. 'dom:' .. domain, ARGV[5], xid)
  rcall('ZADD', bp .. 'all', ARGV[5], xid)
  rcall('HSET', KEYS[1], 'd', domain, 'c', ARGV[5])
end

if cur[4] then
  -- It was a tombstone: it lives on without expiry now.
  rcall('HDEL', KEYS[1], 't')
  rcall('PERSIST', KEYS[1])
  rcall('ZREM', bp .. 'exp', xid)
  rcall('HDEL', bp .. 'expdom', xid)
end

rcall('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3], 's', stuckMark(ARGV[2], dueAt))
-- Most writes leave the entry where it is (another participant enlisted, the outcome written
-- with the same dueAt): the index is not touched then.
if indexed ~= stuckMark(ARGV[1], dueAt) then
  if dueAt ~= '' then
    rcall('ZADD', bp .. 'stuck:' .. domain, dueAt, xid)
  else
    rcall('ZREM', bp .. 'stuck:' .. domain, xid)
  end
end
return 0
