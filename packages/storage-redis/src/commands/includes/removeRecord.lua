--[[
  The write of remove-2.lua (see there): deletes the record of hash `key` in the bucket whose
  key prefix is `bp` if its stored version is `expected`, and every index entry of it. Returns
  0 deleted, -1 no such record, n the stored version n differs.
]]
--- @include "casRead"
--- @include "stuckMark"

local function removeRecord(key, bp, expected)
  local rcall = redis.call
  local xid = string.sub(key, #bp + 4)
  local cur, lost = casRead(key, expected, 'd', 't', 's')
  if not cur then return lost end

  rcall('DEL', key)
  -- No entry to drop when the mark says the record has none (see stuckMark).
  if cur[4] ~= stuckMark(expected, '') then rcall('ZREM', bp .. 'stuck:' .. cur[2], xid) end
  rcall('ZREM', bp .. 'dom:' .. cur[2], xid)
  rcall('ZREM', bp .. 'all', xid)
  if cur[3] then
    rcall('ZREM', bp .. 'exp', xid)
    rcall('HDEL', bp .. 'expdom', xid)
  end
  return 0
end
