--[[
  Compare-and-set of a live (non-terminal) record on its version, with index maintenance.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  (the index keys, as in create-2.lua)

    ARGV[1] expected version
    ARGV[2] new version
    ARGV[3] record JSON
    ARGV[4] domain
    ARGV[5] createdAt
    ARGV[6] dueAt when the record belongs in the stuck index, '' otherwise

  Output:
     0  written
    -1  no such record
     n  the stored version n differs from the expected one
]]
--- @include "updateRecord"

return updateRecord(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
