--[[
  Drops tombstones whose expiresAt has passed (by the server's clock) from the indexes of one
  bucket, and their record keys if Redis has not expired them yet. Used before `list`/`count`,
  so the operator views never show (or count) an expired tombstone.

  Input:
    KEYS[1] tombstone index     <p>{b<n>}:exp
    KEYS[2] tombstone domains   <p>{b<n>}:expdom
    KEYS[3] all records index   <p>{b<n>}:all
    KEYS[4] bucket key prefix   <p>{b<n>}:

    ARGV[1] at most this many tombstones per call

  Output: how many were dropped (call again while it equals ARGV[1]).
]]
local rcall = redis.call
local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = rcall('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
for _, xid in ipairs(expired) do
  -- Every write of a record clears its entry here, so an entry is always its current tombstone.
  rcall('DEL', KEYS[4] .. 'tx:' .. xid)
  local domain = rcall('HGET', KEYS[2], xid)
  if domain then rcall('ZREM', KEYS[4] .. 'dom:' .. domain, xid) end
  rcall('ZREM', KEYS[3], xid)
  rcall('ZREM', KEYS[1], xid)
  rcall('HDEL', KEYS[2], xid)
end
return #expired
