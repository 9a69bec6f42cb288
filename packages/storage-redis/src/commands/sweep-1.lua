--[[
  Drops tombstones whose expiresAt has passed (by the server's clock) from the indexes of one
  bucket, and their record keys if Redis has not expired them yet. Used before `list`/`count`,
  so the operator views never show (or count) an expired tombstone.

  Input:
    KEYS[1] bucket key prefix   <p>{b<n>}:  (its `exp`, `expdom`, `all` and `dom:<domain>`
                                             keys are built from it, as in create-2.lua)

    ARGV[1] at most this many tombstones per call

  Output: how many were dropped (call again while it equals ARGV[1]).
]]
--- @include "serverNow"
--- @include "dropExpired"

return dropExpired(KEYS[1], serverNow(), tonumber(ARGV[1]))
