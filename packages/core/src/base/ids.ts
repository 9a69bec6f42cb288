/**
 * What a globalId, an xid or a caller's transaction id may be: 1-128 letters, digits and
 * `_ . : -`. Context headers, `.tcc` commands and `tcc.transaction(fn, { id })` all check it,
 * so an id never needs escaping in a header, a key or a log line.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
