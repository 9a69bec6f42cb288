/** Data of a recovery job. */
export interface RecoverJobData {
  readonly xid: string;
  /** W3C traceparent of the transaction's original trace, for the `tcc.recover` span's link. */
  readonly traceparent?: string;
}

/** Names of the two kinds of job on a recovery queue. */
export const JOB = { scan: 'scan', recover: 'recover' } as const;
