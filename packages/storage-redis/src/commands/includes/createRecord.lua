--[[
  The write of create-2.lua (see there): creates the record of hash `key` in the bucket whose
  key prefix is `bp` unless its xid is stored. Returns 1 created, 0 the xid exists.
]]
--- @include "serverNow"
--- @include "dropExpired"
--- @include "stuckMark"

local function createRecord(key, bp, json, domain, createdAt, dueAt, expiresAt)
  local rcall = redis.call
  local xid = string.sub(key, #bp + 4)

  if rcall('EXISTS', key) == 1 then return 0 end

  -- An expired tombstone of this xid may still sit in the indexes: drop it first.
  local staleDomain = rcall('HGET', bp .. 'expdom', xid)
  if staleDomain then
    rcall('ZREM', bp .. 'dom:' .. staleDomain, xid)
    rcall('ZREM', bp .. 'all', xid)
    rcall('ZREM', bp .. 'exp', xid)
    rcall('HDEL', bp .. 'expdom', xid)
  end

  if expiresAt ~= '' then
    local now = serverNow()
    -- As in complete: each tombstone written drops up to two expired ones of its bucket.
    dropExpired(bp, now, 2)
    if tonumber(expiresAt) <= now then return 1 end
    rcall('HSET', key, 'v', '1', 'd', domain, 'c', createdAt, 'r', json, 't', '1', 's', '1:')
    rcall('PEXPIREAT', key, expiresAt)
    rcall('ZADD', bp .. 'exp', expiresAt, xid)
    rcall('HSET', bp .. 'expdom', xid, domain)
  else
    rcall('HSET', key, 'v', '1', 'd', domain, 'c', createdAt, 'r', json, 's', stuckMark('1', dueAt))
    if dueAt ~= '' then rcall('ZADD', bp .. 'stuck:' .. domain, dueAt, xid) end
  end
  rcall('ZADD', bp .. 'all', createdAt, xid)
  rcall('ZADD', bp .. 'dom:' .. domain, createdAt, xid)
  return 1
end
