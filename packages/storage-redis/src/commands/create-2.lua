--[[
  Creates a transaction record (version 1) unless its xid is stored.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  the bucket's index keys are built from it (one hash
                                            tag: one slot); only these two travel with each write
      <p>{b<n>}:stuck:<domain>  zset dueAt -> xid      (unfinished, not parked)
      <p>{b<n>}:all             zset createdAt -> xid
      <p>{b<n>}:dom:<domain>    zset createdAt -> xid
      <p>{b<n>}:exp             zset expiresAt -> xid  (tombstones)
      <p>{b<n>}:expdom          hash xid -> domain     (tombstones)

    ARGV[1] record JSON
    ARGV[2] domain
    ARGV[3] createdAt
    ARGV[4] dueAt when the record belongs in the stuck index, '' otherwise
    ARGV[5] expiresAt of a terminal record (a tombstone), '' otherwise

  Output:
    1  created (or, for a tombstone already past expiresAt, accepted and forgotten at once)
    0  the xid exists (a live record or tombstone)
]]
--- @include "serverNow"
--- @include "dropExpired"
--- @include "stuckMark"

local rcall = redis.call
local bp = KEYS[2]
local xid = string.sub(KEYS[1], #bp + 4)

if rcall('EXISTS', KEYS[1]) == 1 then return 0 end

-- An expired tombstone of this xid may still sit in the indexes: drop it first.
local staleDomain = rcall('HGET', bp .. 'expdom', xid)
if staleDomain then
  rcall('ZREM', bp .. 'dom:' .. staleDomain, xid)
  rcall('ZREM', bp .. 'all', xid)
  rcall('ZREM', bp .. 'exp', xid)
  rcall('HDEL', bp .. 'expdom', xid)
end

local domain = ARGV[2]
local expiresAt = ARGV[5]
if expiresAt ~= '' then
  local now = serverNow()
  -- As in complete: each tombstone written drops up to two expired ones of its bucket.
  dropExpired(bp, now, 2)
  if tonumber(expiresAt) <= now then return 1 end
  rcall('HSET', KEYS[1], 'v', '1', 'd', domain, 'c', ARGV[3], 'r', ARGV[1], 't', '1', 's', '1:')
  rcall('PEXPIREAT', KEYS[1], expiresAt)
  rcall('ZADD', bp .. 'exp', expiresAt, xid)
  rcall('HSET', bp .. 'expdom', xid, domain)
else
  local dueAt = ARGV[4]
  rcall('HSET', KEYS[1], 'v', '1', 'd', domain, 'c', ARGV[3], 'r', ARGV[1], 's', stuckMark('1', dueAt))
  if dueAt ~= '' then rcall('ZADD', bp .. 'stuck:' .. domain, dueAt, xid) end
end
rcall('ZADD', bp .. 'all', ARGV[3], xid)
rcall('ZADD', bp .. 'dom:' .. domain, ARGV[3], xid)
return 1
