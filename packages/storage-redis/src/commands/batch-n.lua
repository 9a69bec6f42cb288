--[[
  Several writes of one node in one script: what create, update, complete and remove do one
  each, in the order given, each with its own reply. The store sends the writes of one tick
  this way, so that many transactions pay for one command and one reply.

  Input (a variable number of keys: `EVALSHA sha numkeys ...`, numkeys = 2 × writes):
    KEYS[2i-1], KEYS[2i]   write i's record hash and bucket key prefix, as in create-2.lua
    ARGV                   per write, in order: its kind, then its ARGV as in its own script
                             'c' create    5 values (create-2.lua)
                             'u' update    6 values (update-2.lua)
                             'f' complete  6 values (complete-2.lua)
                             'r' remove    1 value  (remove-2.lua)

  Output: one reply per write, in order: the integer its own script returns, or the text of
  the error it raised. A write that fails does not stop the others (each runs under pcall); as
  with a script of its own, the Redis calls it made before failing are not undone. READONLY (a
  replica: no write of the script can have been applied) fails the whole script instead.
]]
--- @include "createRecord"
--- @include "updateRecord"
--- @include "completeRecord"
--- @include "removeRecord"

-- How many ARGV values each kind of write takes after its kind.
local WIDTH = { c = 5, u = 6, f = 6, r = 1 }

-- Checked before any write runs: arguments out of step would be read as the wrong values.
local a = 1
for i = 1, #KEYS / 2 do
  local width = WIDTH[ARGV[a]]
  if not width then
    return redis.error_reply('tcc batch: write ' .. i .. ' has unknown kind ' .. tostring(ARGV[a]))
  end
  a = a + 1 + width
end
if #KEYS % 2 ~= 0 or a ~= #ARGV + 1 then
  return redis.error_reply('tcc batch: ' .. #KEYS .. ' keys do not match ' .. #ARGV .. ' values')
end

local replies = {}
a = 1
for i = 1, #KEYS / 2 do
  local key, bp, kind = KEYS[2 * i - 1], KEYS[2 * i], ARGV[a]
  local ok, reply
  if kind == 'c' then
    ok, reply = pcall(createRecord, key, bp, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
  elseif kind == 'u' then
    ok, reply = pcall(updateRecord, key, bp, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6])
  elseif kind == 'f' then
    ok, reply = pcall(completeRecord, key, bp, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6])
  else
    ok, reply = pcall(removeRecord, key, bp, ARGV[a + 1])
  end
  a = a + 1 + WIDTH[kind]
  if ok then
    replies[i] = reply
  else
    -- The error is its text, or a table with `err`, depending on the Redis release.
    local text = type(reply) == 'table' and tostring(reply.err) or tostring(reply)
    -- A read-only replica (a primary demoted under a client that still points at it) refuses
    -- every write of the script, so none was applied: fail the script as such, so that the
    -- client sees the error (ioredis's `reconnectOnError` acts on READONLY).
    if string.sub(text, 1, 8) == 'READONLY' then return redis.error_reply(text) end
    replies[i] = text
  end
end
return replies
