--[[
  Drops up to `limit` tombstones of the bucket `bp` (its key prefix) whose expiresAt is past
  `now` from its indexes, and their record keys if Redis has not expired them yet; returns how
  many. Every write of a record clears its entry in the tombstone index, so an entry is always
  its current tombstone.
]]
local function dropExpired(bp, now, limit)
  local expKey, expDomainsKey = bp .. 'exp', bp .. 'expdom'
  local expired = redis.call('ZRANGE', expKey, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, xid in ipairs(expired) do
    redis.call('DEL', bp .. 'tx:' .. xid)
    local domain = redis.call('HGET', expDomainsKey, xid)
    if domain then redis.call('ZREM', bp .. 'dom:' .. domain, xid) end
    redis.call('ZREM', bp .. 'all', xid)
    redis.call('ZREM', expKey, xid)
    redis.call('HDEL', expDomainsKey, xid)
  end
  return #expired
end
