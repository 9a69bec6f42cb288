--[[
  Compare-and-set that turns a record into a terminal tombstone kept until expiresAt
  (PEXPIREAT), out of the stuck index; a tombstone already past expiresAt is deleted at once.

  Input: KEYS[1..2] and ARGV[1..5] as in update-2.lua (the same record and bucket);
    ARGV[6] expiresAt

  Output: 0 written (or deleted), -1 no such record, n the stored version n differs.
]]
--- @include "completeRecord"

return completeRecord(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
