/** Kind of a transaction record: the service that began it, or a remote service's part. */
export type TransactionType = 'ROOT' | 'BRANCH';

/**
 * Persisted status of a record (DESIGN.md §3). Writing CONFIRMING or CANCELLING is the
 * commit point: from then on the outcome is decided and recovery only finishes it.
 */
export type TransactionStatus =
  | 'TRYING'
  | 'TRIED'
  | 'TRY_FAILED'
  | 'CONFIRMING'
  | 'CANCELLING'
  | 'CONFIRMED'
  | 'CANCELLED';

/** Statuses after which nothing is left to do; such records are tombstones kept until `expiresAt`. */
export const TERMINAL_STATUSES: ReadonlySet<TransactionStatus> = new Set(['CONFIRMED', 'CANCELLED']);

/**
 * Statuses in which the owning domain still owes the next step, so a record left in one of
 * them for too long is "stuck". TRIED and TRY_FAILED branches wait for their root instead.
 */
export const STUCK_STATUSES: ReadonlySet<TransactionStatus> = new Set(['TRYING', 'CONFIRMING', 'CANCELLING']);

/** Progress of one participant. Only written when it matters for a retry (see DESIGN.md §4). */
export type ParticipantStatus = 'TRYING' | 'TRIED' | 'CONFIRMED' | 'CANCELLED';

/** A try/confirm/cancel triple registered in this process. */
export interface LocalParticipant {
  readonly id: string;
  readonly kind: 'local';
  /** Registered name of the action, `participant.method`, e.g. `capital.record`. */
  readonly target: string;
  /** Name of the confirm method, kept for operators. */
  readonly confirm: string;
  /** Name of the cancel method, kept for operators. */
  readonly cancel: string;
  /** The try's arguments, encoded by the codec. Confirm and cancel receive them decoded. */
  readonly args: string;
  status: ParticipantStatus;
}

/** A branch kept by another service, reached through its TCC endpoint. */
export interface RemoteParticipant {
  readonly id: string;
  readonly kind: 'remote';
  readonly endpoint: string;
  readonly xid: string;
  status: ParticipantStatus;
}

export type Participant = LocalParticipant | RemoteParticipant;

/**
 * One service's log entry for a global transaction. Times are milliseconds since the epoch.
 * `version` starts at 1 and every write is a compare-and-set on it.
 */
export interface TransactionRecord {
  globalId: string;
  xid: string;
  domain: string;
  rootDomain: string;
  type: TransactionType;
  status: TransactionStatus;
  participants: Participant[];
  attachments: Record<string, string>;
  retries: number;
  version: number;
  createdAt: number;
  updatedAt: number;
  /** Try deadline: a ROOT still TRYING after it is cancelled by recovery. */
  deadline: number;
  /** Set when recovery gave up after `maxRetries`; the record then waits for an operator. */
  parkedAt?: number;
  lastError?: string;
  /** Terminal records only: the store may forget the tombstone after this time. */
  expiresAt?: number;
}
