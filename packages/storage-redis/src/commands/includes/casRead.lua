--[[
  Reads the fields of a record's hash that a compare-and-set on its version needs: 'v' first,
  then the fields named. Returns them, or nil and the script's reply when the compare-and-set
  is lost: -1 when there is no record, else the stored version.
]]
local function casRead(key, expected, ...)
  local cur = redis.call('HMGET', key, 'v', ...)
  if not cur[1] then return nil, -1 end
  if cur[1] ~= expected then return nil, tonumber(cur[1]) end
  return cur
end
