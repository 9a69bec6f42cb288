--[[
  The field 's' of a record hash says where the record sits in its domain's stuck index:
  '<version>:<dueAt>' when it has an entry scored dueAt, '<version>:' when it has none, both
  as of that version. A write whose record keeps its entry (or its absence) finds the mark it
  is about to write and skips the sorted-set call. The version binds the mark to the write
  that set it: a hash written without the mark (by an older release of this package, whose
  scripts do not know it) or whose version moved on without it never matches, and the index
  is written as it always was.

  `dueAt` is '' for a record that has no place in the stuck index.
]]
local function stuckMark(version, dueAt)
  return version .. ':' .. dueAt
end
