--[[
  The write of update-2.lua (see there): compare-and-set of the live record of hash `key` in
  the bucket whose key prefix is `bp`, with index maintenance. Returns 0 written, -1 no such
  record, n the stored version n differs from `expected`.
]]
--- @include "casRead"
--- @include "stuckMark"

local function updateRecord(key, bp, expected, version, json, domain, createdAt, dueAt)
  local rcall = redis.call
  local xid = string.sub(key, #bp + 4)
  local cur, lost = casRead(key, expected, 'd', 'c', 't', 's')
  if not cur then return lost end

  -- Where the stuck index has the record now, if the hash's mark still says so (see stuckMark).
  local indexed = cur[5]
  if cur[2] ~= domain or cur[3] ~= createdAt then
    -- Rare: the domain or createdAt changed. Move the index entries, keep the fields in step.
    if cur[2] ~= domain then
      rcall('ZREM', bp .. 'stuck:' .. cur[2], xid)
      rcall('ZREM', bp .. 'dom:' .. cur[2], xid)
      -- The mark was about the old domain's index.
      indexed = false
    end
    rcall('ZADD', bp .. 'dom:' .. domain, createdAt, xid)
    rcall('ZADD', bp .. 'all', createdAt, xid)
    rcall('HSET', key, 'd', domain, 'c', createdAt)
  end

  if cur[4] then
    -- It was a tombstone: it lives on without expiry now.
    rcall('HDEL', key, 't')
    rcall('PERSIST', key)
    rcall('ZREM', bp .. 'exp', xid)
    rcall('HDEL', bp .. 'expdom', xid)
  end

  rcall('HSET', key, 'v', version, 'r', json, 's', stuckMark(version, dueAt))
  -- Most writes leave the entry where it is (another participant enlisted, the outcome written
  -- with the same dueAt): the index is not touched then.
  if indexed ~= stuckMark(expected, dueAt) then
    if dueAt ~= '' then
      rcall('ZADD', bp .. 'stuck:' .. domain, dueAt, xid)
    else
      rcall('ZREM', bp .. 'stuck:' .. domain, xid)
    end
  end
  return 0
end
