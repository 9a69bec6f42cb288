--[[
  Deletes a record if its stored version is the expected one, and every index entry of it.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] all records index   <p>{b<n>}:all
    KEYS[3] tombstone index     <p>{b<n>}:exp
    KEYS[4] tombstone domains   <p>{b<n>}:expdom
    KEYS[5] bucket key prefix   <p>{b<n>}:  (the stored domain's index keys are built from it)

    ARGV[1] xid
    ARGV[2] expected version

  Output: 0 deleted, -1 no such record, n the stored version n differs.
]]
--- @include "casRead"

local rcall = redis.call
local xid = ARGV[1]
local cur, lost = casRead(KEYS[1], ARGV[2], 'd', 't')
if not cur then return lost end

rcall('DEL', KEYS[1])
rcall('ZREM', KEYS[5] .. 'stuck:' .. cur[2], xid)
rcall('ZREM', KEYS[5] .. 'dom:' .. cur[2], xid)
rcall('ZREM', KEYS[2], xid)
if cur[3] then
  rcall('ZREM', KEYS[3], xid)
  rcall('HDEL', KEYS[4], xid)
end
return 0
