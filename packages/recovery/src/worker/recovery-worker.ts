import { EventEmitter } from 'node:events';
import type { RecoveryResult, TransactionRecord, TransactionStatus } from '@tcc/core';
import { InvalidOptionError, parkIfExhausted } from '@tcc/core';
import { type ConnectionOptions, type Job, Queue } from 'bullmq';
import { RecoveryFailedError } from '../errors/recovery-failed-error.js';
import { RecoveryTelemetry } from '../telemetry/recovery-telemetry.js';
import { retryDelay } from './backoff.js';
import { RecoveryBullWorker } from './bull-worker.js';
import { checkConnection, isClient } from './connection.js';
import { ScanHandover } from './handover.js';
import { JOB, type RecoverJobData } from './job-data.js';
import { type RecoveryWorkerOptions, type ResolvedWorkerOptions, resolveWorkerOptions } from './options.js';
import { recoverScanned } from './recover-scanned.js';
import {
  CloseDeadline,
  type CloseOutcome,
  closeBullmq,
  closeTimeoutOf,
  type RecoveryCloseOptions,
} from './shutdown.js';
import { StuckScanner } from './stuck-scanner.js';

/** Emitted when a record is parked (by this worker, or by core's own `maxRetries`). */
export interface ParkedEvent {
  readonly xid: string;
  readonly error: unknown;
  /** The job's attempt that parked it, from 1. */
  readonly attempt: number;
  /** The record's status, kept by the park (e.g. CONFIRMING). */
  readonly status?: TransactionStatus | undefined;
}

/** Emitted when an attempt failed and the job will be retried after its backoff. */
export interface FailedEvent {
  readonly xid: string;
  readonly error: unknown;
  readonly attempt: number;
  /** The record's status after the attempt; absent when the attempt threw (store unreachable). */
  readonly status?: TransactionStatus | undefined;
}

/** What the worker adds to an attempt's result in its `recovered` event. */
export interface RecoveredInfo {
  /** The job's attempt, from 1 (BullMQ's `attemptsMade + 1`). */
  readonly attempt: number;
}

export interface RecoveryWorkerEvents {
  /** Every attempt's result (confirmed, cancelled, waiting, busy, ...). */
  recovered: [result: RecoveryResult, info: RecoveredInfo];
  failed: [event: FailedEvent];
  parked: [event: ParkedEvent];
  /** A scan finished; `found` stuck records (the gauge's value). */
  scanned: [found: number];
  /** BullMQ or the store failed outside a job (e.g. Redis unreachable). */
  error: [error: Error];
  /** `close()` has finished, gracefully (`drained`) or by force (`forced`). */
  closed: [outcome: CloseOutcome];
}

type RecoverJob = Job<RecoverJobData, string, string>;

/** Pages of scanned records (`batchSize` each) a worker keeps for its own jobs, see {@link ScanHandover}. */
const HANDOVER_PAGES = 10;

/**
 * Recovery of one domain on BullMQ (DESIGN.md §7): a job scheduler per domain enqueues a scan
 * every `scanEveryMs`; the scan enqueues one job per stuck record under a deterministic id; each
 * job runs `tcc.recover(xid)`, and failed attempts are retried with exponential backoff and
 * jitter until the record is parked after `maxRetries`.
 *
 * Run as many workers on one queue as you like, in one process or many: BullMQ gives each job to
 * one worker, takes over the jobs of a killed worker through its stalled-job check, and the
 * compare-and-set on the record's version keeps two workers from driving one record at once.
 *
 * @example
 * const worker = new RecoveryWorker({ tcc, connection: new Redis(url, { maxRetriesPerRequest: null }) });
 * await worker.start();
 * // ...
 * await worker.close(); // waits for the jobs it is running, at most closeTimeoutMs (10 s)
 */
export class RecoveryWorker extends EventEmitter<RecoveryWorkerEvents> {
  readonly options: ResolvedWorkerOptions;
  readonly #telemetry: RecoveryTelemetry;
  readonly #handover: ScanHandover;
  #queue: Queue | undefined;
  #worker: RecoveryBullWorker<RecoverJobData, string, string> | undefined;
  #closing: Promise<CloseOutcome> | undefined;
  #deadline: CloseDeadline | undefined;
  #closed = false;
  readonly #closedSignal: Promise<void>;
  #signalClosed!: () => void;
  #onSignal: (() => void) | undefined;

  /** @throws {InvalidOptionError} naming the bad option, e.g. a connection without `maxRetriesPerRequest: null`. */
  constructor(options: RecoveryWorkerOptions) {
    super();
    this.options = resolveWorkerOptions(options);
    checkConnection(this.options.connection, this.options.prefix);
    this.#telemetry = new RecoveryTelemetry(this.options.tcc.domain);
    const { batchSize, scanEveryMs } = this.options;
    this.#handover = new ScanHandover(HANDOVER_PAGES * batchSize, scanEveryMs);
    this.#closedSignal = new Promise((resolve) => {
      this.#signalClosed = resolve;
    });
  }

  /** Id of the domain's job scheduler, shared by every worker of the queue. */
  get schedulerId(): string {
    return `scan-${this.options.tcc.domain}`;
  }

  /** The BullMQ queue (after `start()`), e.g. for its job counts. */
  get queue(): Queue | undefined {
    return this.#queue;
  }

  /**
   * Creates (or updates) the domain's scan scheduler and starts taking jobs. Resolves without
   * starting when `close()` is called meanwhile (e.g. a signal while Redis is unreachable).
   */
  async start(): Promise<void> {
    if (this.#queue !== undefined || this.#closing !== undefined) {
      throw new InvalidOptionError('RecoveryWorker.start: already started or closed (a worker starts once)');
    }
    const { prefix, queueName, concurrency, lockDurationMs, scanEveryMs } = this.options;
    if (this.options.handleSignals) {
      this.#onSignal = () => void this.close();
      process.once('SIGTERM', this.#onSignal);
      process.once('SIGINT', this.#onSignal);
    }
    // ioredis's options type and BullMQ's describe the same object differently.
    const connection = this.options.connection as ConnectionOptions;
    const queue = new Queue(queueName, { connection, prefix });
    this.#queue = queue;
    queue.on('error', (error) => this.#error(error));
    await this.#unlessClosing(
      queue.upsertJobScheduler(
        this.schedulerId,
        { every: scanEveryMs },
        { name: JOB.scan, data: {}, opts: { removeOnComplete: true, removeOnFail: true } },
      ),
    );
    if (this.#closing !== undefined) return;
    const worker = new RecoveryBullWorker(queueName, (job: RecoverJob) => this.#process(job), {
      connection,
      prefix,
      concurrency,
      lockDuration: lockDurationMs,
      stalledInterval: Math.max(1, Math.ceil(lockDurationMs / 2)),
      maxStalledCount: 3,
      settings: {
        backoffStrategy: (attemptsMade: number) =>
          retryDelay(attemptsMade, this.options.recoverAfterMs, this.options.backoff),
      },
    });
    this.#worker = worker;
    worker.on('error', (error) => this.#error(error));
    await this.#unlessClosing(worker.waitUntilReady());
  }

  /** Runs one scan now, in this process, and resolves with the number of stuck records found. */
  async scanNow(): Promise<number> {
    const queue = this.#queue;
    if (queue === undefined) throw new InvalidOptionError('RecoveryWorker.scanNow: call start() first');
    return this.#scan(queue);
  }

  /**
   * Stops taking jobs, waits for the ones running (a drain) and closes the connections BullMQ
   * made, for at most `timeoutMs` (default: the `closeTimeoutMs` option, 10 s). If that wait runs
   * out, typically because Redis is unreachable (BullMQ's graceful close then does not end), it
   * closes by force: it disconnects BullMQ's connections without waiting for Redis, and resolves
   * `forced`. Jobs that were still running are not lost: their locks are no longer renewed, so
   * BullMQ's stalled-job check gives them to another worker once Redis is back; a job's own
   * code, if still running in this process, is not interrupted (core's lease keeps it from
   * driving its record alongside the new worker).
   *
   * A client passed as `connection` stays open, also after a forced close: the caller owns it
   * (and it keeps the process alive until the caller disconnects it). The scheduler stays in
   * Redis for the other workers. The promise always resolves, and `closed` is emitted once.
   * Calling it again returns the same promise; a shorter `timeoutMs` given then cuts the wait
   * short (`{ timeoutMs: 0 }` forces at once).
   *
   * @throws {InvalidOptionError} (a rejected promise) naming a bad `timeoutMs` or option.
   */
  close(options?: RecoveryCloseOptions): Promise<CloseOutcome> {
    let timeoutMs: number;
    try {
      timeoutMs = closeTimeoutOf(options, this.options.closeTimeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closing === undefined) {
      this.#deadline = new CloseDeadline();
      this.#closing = this.#shutDown(this.#deadline);
    }
    this.#deadline!.after(timeoutMs);
    return this.#closing;
  }

  async #shutDown(deadline: CloseDeadline): Promise<CloseOutcome> {
    if (this.#onSignal !== undefined) {
      process.off('SIGTERM', this.#onSignal);
      process.off('SIGINT', this.#onSignal);
    }
    const parts = {
      worker: this.#worker,
      queue: this.#queue,
      ownsConnection: !isClient(this.options.connection),
    };
    const outcome = await closeBullmq(parts, deadline, (error) => this.#error(error));
    this.#handover.clear();
    this.#closed = true;
    this.#signalClosed();
    this.emit('closed', outcome);
    return outcome;
  }

  /** `work`, or nothing once `close()` has finished: a start must not outlive its close. */
  async #unlessClosing(work: Promise<unknown>): Promise<void> {
    await Promise.race([work, this.#closedSignal]);
  }

  async #process(job: RecoverJob): Promise<string> {
    if (job.name === JOB.scan) return `found ${await this.#scan(this.#queue!)}`;
    const { xid, traceparent } = job.data;
    const info = { xid, traceparent, jobId: job.id, attempt: job.attemptsMade + 1 };
    // The copy a scan of this process read, if any: saves reading the record again.
    const record = this.#handover.take(xid, Date.now());
    return this.#telemetry.job(
      info,
      () => this.#recover(xid, job.attemptsMade + 1, record),
      (outcome) => outcome,
    );
  }

  async #recover(xid: string, attempt: number, record: TransactionRecord | undefined): Promise<string> {
    const { tcc, maxRetries } = this.options;
    let result: RecoveryResult;
    try {
      result = await (record === undefined ? tcc.recover(xid) : recoverScanned(tcc, xid, record));
    } catch (error) {
      // The store is unreachable or similar: BullMQ retries the job after its backoff.
      this.emit('failed', { xid, error, attempt });
      throw error;
    }
    this.emit('recovered', result, { attempt });
    switch (result.outcome) {
      case 'confirmed':
      case 'cancelled':
      case 'try-failed':
        return result.outcome;
      case 'parked':
        this.emit('parked', { xid, error: result.error, attempt, status: result.status });
        return result.outcome;
      case 'failed': {
        if (await parkIfExhausted(tcc.storage, xid, maxRetries, result.error)) {
          this.emit('parked', { xid, error: result.error, attempt, status: result.status });
          return 'parked';
        }
        this.emit('failed', { xid, error: result.error, attempt, status: result.status });
        throw new RecoveryFailedError(xid, result.error);
      }
      default:
        // waiting, busy, finished, not-found, foreign: nothing for this job to do; a later scan
        // enqueues the record again if it is still stuck then.
        return result.outcome;
    }
  }

  async #scan(queue: Queue): Promise<number> {
    const { tcc, recoverAfterMs, batchSize, maxRetries } = this.options;
    const handover = this.#handover;
    const found = await new StuckScanner({
      tcc,
      queue,
      recoverAfterMs,
      batchSize,
      maxRetries,
      handover,
    }).scan();
    this.#telemetry.stuck(found);
    this.emit('scanned', found);
    return found;
  }

  #error(error: Error): void {
    // After a close, BullMQ's leftovers (a forced close's cut connections) are not news.
    if (this.#closed) return;
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else console.error('[tcc] recovery worker:', error);
  }
}
