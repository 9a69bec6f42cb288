/**
 * The BullMQ job id of a record's recovery job. Deterministic, so a scan that finds the record
 * again while its job is waiting, delayed or active adds nothing. BullMQ refuses `:` and ids that
 * read as integers, hence the escaping and the prefix.
 */
export function recoveryJobId(xid: string): string {
  return `r.${xid.replaceAll('%', '%25').replaceAll(':', '%3A')}`;
}
