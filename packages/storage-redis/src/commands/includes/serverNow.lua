-- The server's clock in milliseconds: what PEXPIREAT and every expiry check here go by.
local function serverNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
