--[[
  The write of complete-2.lua (see there): compare-and-set that turns the record of hash `key`
  in the bucket whose key prefix is `bp` into a tombstone kept until `expiresAt`. Returns 0
  written (or deleted), -1 no such record, n the stored version n differs from `expected`.
]]
--- @include "casRead"
--- @include "serverNow"
--- @include "dropExpired"
--- @include "stuckMark"

local function completeRecord(key, bp, expected, version, json, domain, createdAt, expiresAt)
  local rcall = redis.call
  local xid = string.sub(key, #bp + 4)
  local cur, lost = casRead(key, expected, 'd', 'c', 't', 's')
  if not cur then return lost end

  -- No entry to drop when the mark says the record has none (see stuckMark).
  if cur[5] ~= stuckMark(expected, '') then rcall('ZREM', bp .. 'stuck:' .. cur[2], xid) end
  if cur[2] ~= domain then rcall('ZREM', bp .. 'dom:' .. cur[2], xid) end

  local now = serverNow()
  -- Redis expires a tombstone's key, not its index entries: each tombstone written drops up to
  -- two expired ones of its bucket, so the indexes stay the size of the live tombstones.
  dropExpired(bp, now, 2)
  if tonumber(expiresAt) <= now then
    rcall('DEL', key)
    rcall('ZREM', bp .. 'all', xid)
    rcall('ZREM', bp .. 'dom:' .. domain, xid)
    rcall('ZREM', bp .. 'exp', xid)
    rcall('HDEL', bp .. 'expdom', xid)
    return 0
  end

  rcall('HSET', key, 'v', version, 'd', domain, 'c', createdAt, 'r', json, 't', '1', 's', stuckMark(version, ''))
  rcall('PEXPIREAT', key, expiresAt)
  rcall('ZADD', bp .. 'exp', expiresAt, xid)
  rcall('HSET', bp .. 'expdom', xid, domain)
  if cur[2] ~= domain or cur[3] ~= createdAt then
    rcall('ZADD', bp .. 'all', createdAt, xid)
    rcall('ZADD', bp .. 'dom:' .. domain, createdAt, xid)
  end
  return 0
end
