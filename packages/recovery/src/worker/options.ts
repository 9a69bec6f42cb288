import type { Tcc } from '@tcc/core';
import { InvalidOptionError } from '@tcc/core';
import {
  describeValue,
  requireNonNegativeInteger,
  requireObject,
  requirePositiveInteger,
} from '@tcc/core/storage';
import type { Cluster, Redis, RedisOptions } from 'ioredis';

/** Exponential backoff between the attempts of one recovery job. */
export interface RecoveryBackoff {
  /** Delay before the first retry, added to `recoverAfterMs` (ms). Default 1,000. */
  delayMs?: number;
  /** Cap of the exponential part (ms). Default 300,000. */
  maxDelayMs?: number;
  /** Share of the exponential part drawn at random, 0 to 1. Default 0.5. */
  jitter?: number;
}

/**
 * Where BullMQ keeps its queue: an ioredis `Redis` or `Cluster` created with
 * `maxRetriesPerRequest: null` (the worker's blocking commands need it), or options for one.
 */
export type RecoveryConnection = Redis | Cluster | RedisOptions;

export interface RecoveryWorkerOptions {
  /** The runtime of the domain to recover, with its participants registered. */
  tcc: Tcc;
  connection: RecoveryConnection;
  /** BullMQ queue name. Default `tcc-recovery-<domain>`. No `:`. */
  queueName?: string;
  /**
   * BullMQ key prefix. Default `{tcc}`: a hash tag, so every key of the queue lands in one
   * Redis Cluster slot. On a Cluster the prefix must contain a hash tag.
   */
  prefix?: string;
  /** Recovery jobs one worker runs at once. Default 32. */
  concurrency?: number;
  /** How often the domain's scheduler enqueues a scan for stuck records (ms). Default 10,000. */
  scanEveryMs?: number;
  /**
   * The base of a failed job's retry delay (ms). Default: the Tcc's `recovery.recoverAfterMs`
   * (`tcc.recoveryOptions`), which is also how long a failed step rests before its record is due
   * again: a smaller value retries jobs that find the record not yet due.
   */
  recoverAfterMs?: number;
  /**
   * Failed attempts after which the worker parks a record (counted in the record's `retries`,
   * so attempts of crashed workers count too). Default: the Tcc's `recovery.maxRetries`
   * (`tcc.recoveryOptions`). One rule, core's, with two limits: the Tcc parks at its own
   * `recovery.maxRetries` as well, so a record is parked at the lower of the two.
   */
  maxRetries?: number;
  backoff?: RecoveryBackoff;
  /** Stuck records read per `findStuck` page and enqueued per `addBulk`. Default 500. */
  batchSize?: number;
  /**
   * How long a job's lock lasts without renewal (ms). Default 30,000. A killed worker's jobs
   * are taken over by the stalled-job check, which runs every `lockDurationMs / 2`.
   */
  lockDurationMs?: number;
  /**
   * How long `close()` waits for the running jobs and a graceful close before it closes by
   * force (ms; `Infinity`: as long as it takes). Default 10,000. BullMQ's graceful close does not
   * end while Redis is unreachable; a forced close leaves the running jobs to the stalled-job
   * check of the other workers.
   */
  closeTimeoutMs?: number;
  /**
   * Close (draining active jobs, at most `closeTimeoutMs`) on the first SIGTERM or SIGINT. The
   * worker then stops listening, so a second one gets Node's default: the process ends at once.
   * Default false.
   */
  handleSignals?: boolean;
}

export interface ResolvedWorkerOptions {
  readonly tcc: Tcc;
  readonly connection: RecoveryConnection;
  readonly queueName: string;
  readonly prefix: string;
  readonly concurrency: number;
  readonly scanEveryMs: number;
  readonly recoverAfterMs: number;
  readonly maxRetries: number;
  readonly backoff: Required<RecoveryBackoff>;
  readonly batchSize: number;
  readonly lockDurationMs: number;
  readonly closeTimeoutMs: number;
  readonly handleSignals: boolean;
}

const KNOWN = new Set([
  'tcc',
  'connection',
  'queueName',
  'prefix',
  'concurrency',
  'scanEveryMs',
  'recoverAfterMs',
  'maxRetries',
  'backoff',
  'batchSize',
  'lockDurationMs',
  'closeTimeoutMs',
  'handleSignals',
]);

const WHERE = 'new RecoveryWorker';

/** Checks every option and fills in the defaults; throws {@link InvalidOptionError} naming the bad one. */
export function resolveWorkerOptions(options: RecoveryWorkerOptions): ResolvedWorkerOptions {
  requireObject(options, `${WHERE}: options`);
  const unknown = Object.keys(options).filter((key) => !KNOWN.has(key));
  if (unknown.length > 0) throw new InvalidOptionError(`${WHERE}: unknown option ${unknown.join(', ')}`);
  const { tcc } = options;
  if (!isTcc(tcc)) {
    throw new InvalidOptionError(`${WHERE}: tcc must be a Tcc instance, got ${describeValue(tcc)}`);
  }
  const queueName = options.queueName ?? `tcc-recovery-${tcc.domain}`;
  if (typeof queueName !== 'string' || queueName === '' || queueName.includes(':')) {
    throw new InvalidOptionError(
      `${WHERE}: queueName must be a non-empty string without ":", got ${describeValue(queueName)}`,
    );
  }
  const prefix = options.prefix ?? '{tcc}';
  if (typeof prefix !== 'string' || prefix === '') {
    throw new InvalidOptionError(`${WHERE}: prefix must be a non-empty string, got ${describeValue(prefix)}`);
  }
  const backoff = options.backoff ?? {};
  requireObject(backoff, `${WHERE}: backoff`);
  const jitter = backoff.jitter ?? 0.5;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError(
      `${WHERE}: backoff.jitter must be a number from 0 to 1, got ${describeValue(jitter)}`,
    );
  }
  // The Tcc's resolved tuning: the worker recovers as the runtime would, unless told otherwise.
  const tuning = tcc.recoveryOptions;
  if (options.handleSignals !== undefined && typeof options.handleSignals !== 'boolean') {
    throw new InvalidOptionError(
      `${WHERE}: handleSignals must be a boolean, got ${describeValue(options.handleSignals)}`,
    );
  }
  return {
    tcc,
    connection: options.connection,
    queueName,
    prefix,
    concurrency: positive(options.concurrency ?? 32, 'concurrency'),
    scanEveryMs: positive(options.scanEveryMs ?? 10_000, 'scanEveryMs'),
    recoverAfterMs: nonNegative(options.recoverAfterMs ?? tuning.recoverAfterMs, 'recoverAfterMs'),
    maxRetries: positive(options.maxRetries ?? tuning.maxRetries, 'maxRetries'),
    backoff: {
      delayMs: nonNegative(backoff.delayMs ?? 1_000, 'backoff.delayMs'),
      maxDelayMs: nonNegative(backoff.maxDelayMs ?? 300_000, 'backoff.maxDelayMs'),
      jitter,
    },
    batchSize: positive(options.batchSize ?? 500, 'batchSize'),
    lockDurationMs: positive(options.lockDurationMs ?? 30_000, 'lockDurationMs'),
    closeTimeoutMs: checkCloseTimeout(options.closeTimeoutMs ?? 10_000, `${WHERE}: closeTimeoutMs`),
    handleSignals: options.handleSignals ?? false,
  };
}

/** Duck-typed, so a Tcc from another copy of `@tcc/core` (a config module's) is accepted too. */
export function isTcc(value: unknown): value is Tcc {
  const v = value as Partial<Tcc> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.recover === 'function' &&
    typeof v.domain === 'string' &&
    typeof v.storage === 'object' &&
    v.storage !== null
  );
}

/** Core's checks, the option named as the worker's. */
function positive(value: unknown, name: string): number {
  return requirePositiveInteger(value, `${WHERE}: ${name}`);
}

function nonNegative(value: unknown, name: string): number {
  return requireNonNegativeInteger(value, `${WHERE}: ${name}`);
}

/** Longest delay `setTimeout` honours; a larger one would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A close timeout as given to the constructor (`closeTimeoutMs`) or to `close({ timeoutMs })`:
 * a whole number of ms up to 2,147,483,647, or `Infinity`.
 * @throws {InvalidOptionError} naming `name` and the bad value.
 */
export function checkCloseTimeout(value: unknown, name: string): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new InvalidOptionError(
      `${name} must be a whole number of ms from 0 to ${MAX_TIMER_MS}, or Infinity, got ${describeValue(value)}`,
    );
  }
  return value;
}
