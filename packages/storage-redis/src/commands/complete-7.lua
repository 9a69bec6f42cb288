--[[
  Compare-and-set that turns a record into a terminal tombstone kept until expiresAt
  (PEXPIREAT), out of the stuck index; a tombstone already past expiresAt is deleted at once.

  Input: KEYS[1..7] and ARGV[1..6] as in update-7.lua (the same record and index keys);
    ARGV[7] expiresAt

  Output: 0 written (or deleted), -1 no such record, n the stored version n differs.
]]
--- @include "casRead"
--- @include "serverNow"
--- @include "dropExpired"

local rcall = redis.call
local xid = ARGV[1]

local cur, lost = casRead(KEYS[1], ARGV[2], 'd', 'c', 't')
if not cur then return lost end

local domain = ARGV[5]
rcall('ZREM', KEYS[2], xid)
if cur[2] ~= domain then
  rcall('ZREM', KEYS[7] .. 'stuck:' .. cur[2], xid)
  rcall('ZREM', KEYS[7] .. 'dom:' .. cur[2], xid)
end

local now = serverNow()
-- Redis expires a tombstone's key, not its index entries: each tombstone written drops up to
-- two expired ones of its bucket, so the indexes stay the size of the live tombstones.
dropExpired(KEYS[5], KEYS[6], KEYS[3], KEYS[7], now, 2)
local expiresAt = ARGV[7]
if tonumber(expiresAt) <= now then
  rcall('DEL', KEYS[1])
  rcall('ZREM', KEYS[3], xid)
  rcall('ZREM', KEYS[4], xid)
  rcall('ZREM', KEYS[5], xid)
  rcall('HDEL', KEYS[6], xid)
  return 0
end

rcall('HSET', KEYS[1], 'v', ARGV[3], 'd', domain, 'c', ARGV[6], 'r', ARGV[4], 't', '1')
rcall('PEXPIREAT', KEYS[1], expiresAt)
rcall('ZADD', KEYS[5], expiresAt, xid)
rcall('HSET', KEYS[6], xid, domain)
if cur[2] ~= domain or cur[3] ~= ARGV[6] then
  rcall('ZADD', KEYS[3], ARGV[6], xid)
  rcall('ZADD', KEYS[4], ARGV[6], xid)
end
return 0
