--[[
  Creates a transaction record (version 1) unless its xid is stored.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] stuck index         <p>{b<n>}:stuck:<domain>   (zset dueAt -> xid)
    KEYS[3] all records index   <p>{b<n>}:all              (zset createdAt -> xid)
    KEYS[4] domain index        <p>{b<n>}:dom:<domain>     (zset createdAt -> xid)
    KEYS[5] tombstone index     <p>{b<n>}:exp              (zset expiresAt -> xid)
    KEYS[6] tombstone domains   <p>{b<n>}:expdom           (hash xid -> domain)
    KEYS[7] bucket key prefix   <p>{b<n>}:                 (same hash tag: same slot)

    ARGV[1] xid
    ARGV[2] record JSON
    ARGV[3] domain
    ARGV[4] createdAt
    ARGV[5] dueAt (the stuck index's score)
    ARGV[6] '1' when the record belongs in the stuck index
    ARGV[7] expiresAt of a terminal record (a tombstone), '' otherwise

  Output:
    1  created (or, for a tombstone already past expiresAt, accepted and forgotten at once)
    0  the xid exists (a live record or tombstone)
]]
--- @include "serverNow"
--- @include "dropExpired"

local rcall = redis.call
local xid = ARGV[1]


if rcall('EXISTS', KEYS[1]) == 1 then return 0 end

-- An expired tombstone of this xid may still sit in the indexes: drop it first.
local staleDomain = rcall('HGET', KEYS[6], xid)
if staleDomain then
  rcall('ZREM', KEYS[7] .. 'dom:' .. staleDomain, xid)
  rcall('ZREM', KEYS[3], xid)
  rcall('ZREM', KEYS[5], xid)
  rcall('HDEL', KEYS[6], xid)
end

local expiresAt = ARGV[7]
if expiresAt ~= '' then
  local now = serverNow()
  -- As in complete: each tombstone written drops up to two expired ones of its bucket.
  dropExpired(KEYS[5], KEYS[6], KEYS[3], KEYS[7], now, 2)
  if tonumber(expiresAt) <= now then return 1 end
end

if expiresAt ~= '' then
  rcall('HSET', KEYS[1], 'v', '1', 'd', ARGV[3], 'c', ARGV[4], 'r', ARGV[2], 't', '1')
  rcall('PEXPIREAT', KEYS[1], expiresAt)
  rcall('ZADD', KEYS[5], expiresAt, xid)
  rcall('HSET', KEYS[6], xid, ARGV[3])
else
  rcall('HSET', KEYS[1], 'v', '1', 'd', ARGV[3], 'c', ARGV[4], 'r', ARGV[2])
end
rcall('ZADD', KEYS[3], ARGV[4], xid)
rcall('ZADD', KEYS[4], ARGV[4], xid)
if ARGV[6] == '1' then rcall('ZADD', KEYS[2], ARGV[5], xid) end
return 1
