--[[
  Deletes a record if its stored version is the expected one, and every index entry of it.

  Input:
    KEYS[1] record hash         <p>{b<n>}:tx:<xid>
    KEYS[2] bucket key prefix   <p>{b<n>}:  (the index keys, as in create-2.lua; the stored
                                             domain's are built from the record's field 'd')

    ARGV[1] expected version

  Output: 0 deleted, -1 no such record, n the stored version n differs.
]]
--- @include "removeRecord"

return removeRecord(KEYS[1], KEYS[2], ARGV[1])
