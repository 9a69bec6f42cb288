--[[
  Drops tombstones whose expiresAt has passed (by the server's clock) from the indexes of one
  bucket, and their record keys if Redis has not expired them yet. Used before `list`/`count`,
  so the operator views never show (or count) an expired tombstone.

  Input:
    KEYS[1] tombstone index     <p>{b<n>}:exp
    KEYS[2] tombstone domains   <p>{b<n>}:expdom
    KEYS[3] all records index   <p>{b<n>}:all
    KEYS[4] bucket key prefix   <p>{b<n>}:

    ARGV[1] at most this many tombstones per call

  Output: how many were dropped (call again while it equals ARGV[1]).
]]
--- @include "serverNow"
--- @include "dropExpired"

return dropExpired(KEYS[1], KEYS[2], KEYS[3], KEYS[4], serverNow(), tonumber(ARGV[1]))
