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
 * Statuses of records that recovery may have to finish: every one that is not terminal. A
 * store indexes such records (unless parked) by `dueAt`, and `findStuck` returns those due.
 * TRIED and TRY_FAILED branches are among them: past their deadline they ask their parent
 * for the outcome, or cancel.
 */
export const STUCK_STATUSES: ReadonlySet<TransactionStatus> = new Set([
  'TRYING',
  'TRIED',
  'TRY_FAILED',
  'CONFIRMING',
  'CANCELLING',
]);

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
  /** Domain of the service at `endpoint`, when the caller named it (required with signing). */
  domain?: string;
  status: ParticipantStatus;
}

export type ParticipantRecord = LocalParticipant | RemoteParticipant;

/**
 * The right of one driver (a root settling what it began, a branch running its root's command,
 * a recovery attempt, an operator) to run a record's confirm or cancel. Taken by the
 * compare-and-set that writes it, renewed while the driver works, gone with the driver's last
 * write. Another driver that finds it live (`until` not passed) leaves the record alone.
 */
export interface RecordClaim {
  /** Who holds it: unique per claim, naming the process for operators (`host/pid/…#n`). */
  readonly owner: string;
  /** Until when it holds unless renewed (ms since the epoch). */
  readonly until: number;
}

/** Where a branch's try came from: the record that enlisted it, asked for the outcome if its commands never come. */
export interface BranchParent {
  /** Domain of the service that enlisted the branch. */
  readonly domain: string;
  /** Xid of the record that lists the branch as a participant (the root's is the globalId). */
  readonly xid: string;
  /** Base URL at which that service serves `.tcc`, if it said (its `http.url`). */
  readonly endpoint?: string;
}
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
  participants: ParticipantRecord[];
  attachments: Record<string, string>;
  retries: number;
  version: number;
  createdAt: number;
  updatedAt: number;
  /** Try deadline: a ROOT still TRYING after it is cancelled by recovery. */
  deadline: number;
  /**
   * When recovery takes the record over unless it is written again first: the deadline of a
   * try, the end of a driver's claim, a retry's backoff. Set by the runtime on every write;
   * stores index unfinished records by it for `findStuck`.
   */
  dueAt: number;
  /** The driver running its confirm or cancel, while one does. */
  claim?: RecordClaim;
  /** A branch: the record that enlisted it. */
  parent?: BranchParent;
  /** How long the record is kept as a tombstone once finished (ms), instead of the domain's. */
  keepFor?: number;
  /** Set when recovery gave up after `maxRetries`; the record then waits for an operator. */
  parkedAt?: number;
  lastError?: string;
  /** Terminal records only: the store may forget the tombstone after this time. */
  expiresAt?: number;
}
