--[[
  Compare-and-set that turns a record into a terminal tombstone kept until expiresAt
  (PEXPIREAT), out of the stuck index; a tombstone already past expiresAt is deleted at once.

  Input: KEYS[1..2] and ARGV[1..5] as in update-2.lua (the same record and bucket);
    ARGV[6] expiresAt

  Output: 0 written (or deleted), -1 no such record, n the stored version n differs.
]]
--- @include "casRead"
--- @include "serverNow"
--- @include "dropExpired"
--- @include "stuckMark"

local rcall = redis.call
local bp = KEYS[2]
local xid = string.sub(KEYS[1], #bp + 4)

local cur, lost = casRead(KEYS[1], ARGV[1], 'd', 'c', 't', 's')
if not cur then return lost end

local domain = ARGV[4]
local createdAt = ARGV[5]
-- No entry to drop when the mark says the record has none (see stuckMark).
if cur[5] ~= stuckMark(ARGV[1], '') then rcall('ZREM', bp .. 'stuck:' .. cur[2], xid) end
if cur[2] ~= domain then rcall('ZREM', bp .. 'dom:' .. cur[2], xid) end

local now = serverNow()
-- Redis expires a tombstone's key, not its index entries: each tombstone written drops up to
-- two expired ones of its bucket, so the indexes stay the size of the live tombstones.
dropExpired(bp, now, 2)
local expiresAt = ARGV[6]
if tonumber(expiresAt) <= now then
  rcall('DEL', KEYS[1])
  rcall('ZREM', bp .. 'all', xid)
  rcall('ZREM', bp .. 'dom:' .. domain, xid)
  rcall('ZREM', bp .. 'exp', xid)
  rcall('HDEL', bp .. 'expdom', xid)
  return 0
end

rcall('HSET', KEYS[1], 'v', ARGV[2], 'd', domain, 'c', createdAt, 'r', ARGV[3], 't', '1', 's', stuckMark(ARGV[2], ''))
rcall('PEXPIREAT', KEYS[1], expiresAt)
rcall('ZADD', bp .. 'exp', expiresAt, xid)
rcall('HSET', bp .. 'expdom', xid, domain)
if cur[2] ~= domain or cur[3] ~= createdAt then
  rcall('ZADD', bp .. 'all', createdAt, xid)
  rcall('ZADD', bp .. 'dom:' .. domain, createdAt, xid)
end
return 0
