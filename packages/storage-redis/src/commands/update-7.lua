--[[
  Compare-and-set of a live (non-terminal) record on its version, with index maintenance.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] stuck index         <p>{b<n>}:stuck:<domain>   (the new record's domain)
    KEYS[3] all records index   <p>{b<n>}:all
    KEYS[4] domain index        <p>{b<n>}:dom:<domain>     (the new record's domain)
    KEYS[5] tombstone index     <p>{b<n>}:exp
    KEYS[6] tombstone domains   <p>{b<n>}:expdom
    KEYS[7] bucket key prefix   <p>{b<n>}:  (the stored record's own domain keys, when the
                                             domain changes, are built from it: same slot)

    ARGV[1] xid
    ARGV[2] expected version
    ARGV[3] new version
    ARGV[4] record JSON
    ARGV[5] domain
    ARGV[6] createdAt
    ARGV[7] dueAt (the stuck index's score)
    ARGV[8] '1' when the record belongs in the stuck index

  Output:
     0  written
    -1  no such record
     n  the stored version n differs from the expected one
]]
--- @include "casRead"

local rcall = redis.call
local xid = ARGV[1]
local cur, lost = casRead(KEYS[1], ARGV[2], 'd', 'c', 't')
if not cur then return lost end

local domain = ARGV[5]
if cur[2] ~= domain or cur[3] ~= ARGV[6] then
  -- Rare: the domain or createdAt changed. Move the index entries, keep the fields in step.
  if cur[2] ~= domain then
    rcall('ZREM', KEYS[7] .. 'stuck:' .. cur[2], xid)
    rcall('ZREM', KEYS[7] .. 'dom:' .. cur[2], xid)
  end
  rcall('ZADD', KEYS[4], ARGV[6], xid)
  rcall('ZADD', KEYS[3], ARGV[6], xid)
  rcall('HSET', KEYS[1], 'd', domain, 'c', ARGV[6])
end

if cur[4] then
  -- It was a tombstone: it lives on without expiry now.
  rcall('HDEL', KEYS[1], 't')
  rcall('PERSIST', KEYS[1])
  rcall('ZREM', KEYS[5], xid)
  rcall('HDEL', KEYS[6], xid)
end

rcall('HSET', KEYS[1], 'v', ARGV[3], 'r', ARGV[4])
if ARGV[8] == '1' then
  rcall('ZADD', KEYS[2], ARGV[7], xid)
else
  rcall('ZREM', KEYS[2], xid)
end
return 0
