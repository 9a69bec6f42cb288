--[[
  Deletes a record if its stored version is the expected one, and every index entry of it.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  (the index keys, as in create-2.lua; the stored
                                             domain's are built from the record's field 'd')

    ARGV[1] expected version

  Output: 0 deleted, -1 no such record, n the stored version n differs.
]]
--- @include "casRead"
--- @include "stuckMark"

local rcall = redis.call
local bp = KEYS[2]
local xid = string.sub(KEYS[1], #bp + 4)
local cur, lost = casRead(KEYS[1], ARGV[1], 'd', 't', 's')
if not cur then return lost end

rcall('DEL', KEYS[1])
-- No entry to drop when the mark says the record has none (see stuckMark).
if cur[4] ~= stuckMark(ARGV[1], '') then rcall('ZREM', bp .. 'stuck:' .. cur[2], xid) end
rcall('ZREM', bp .. 'dom:' .. cur[2], xid)
rcall('ZREM', bp .. 'all', xid)
if cur[3] then
  rcall('ZREM', bp .. 'exp', xid)
  rcall('HDEL', bp .. 'expdom', xid)
end
return 0
