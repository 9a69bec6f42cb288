--[[
  Creates a transaction record (version 1) unless its xid is stored.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  the bucket's index keys are built from it (one hash
                                            tag: one slot); only these two travel with each write
      <p>{b<n>}:stuck:<domain>  zset dueAt -> xid      (unfinished, not parked)
      <p>{b<n>}:all             zset createdAt -> xid
      <p>{b<n>}:dom:<domain>    zset createdAt -> xid
      <p>{b<n>}:exp             zset expiresAt -> xid  (tombstones)
      <p>{b<n>}:expdom          hash xid -> domain     (tombstones)

    ARGV[1] record JSON
    ARGV[2] domain
    ARGV[3] createdAt
    ARGV[4] dueAt when the record belongs in the stuck index, '' otherwise
    ARGV[5] expiresAt of a terminal record (a tombstone), '' otherwise

  Output:
    1  created (or, for a tombstone already past expiresAt, accepted and forgotten at once)
    0  the xid exists (a live record or tombstone)
]]
--- @include "createRecord"

return createRecord(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
