import type { Clock } from '../base/clock.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import type { RecoveryResult } from './recoverer.js';

export interface PollerConfig {
  readonly domain: string;
  readonly storage: TransactionStorage;
  readonly clock: Clock;
  readonly recover: (xid: string) => Promise<RecoveryResult>;
  readonly intervalMs: number;
  readonly batchSize: number;
  /** Records recovered at once. */
  readonly concurrency: number;
  readonly onResult: ((result: RecoveryResult) => void) | undefined;
  readonly onError: (error: unknown) => void;
}

/**
 * The in-process recovery driver of the embedded default: every `intervalMs` it pages through
 * the records of its domain that are due (`findStuck`) and recovers up to `concurrency` of them
 * at once; each attempt takes the record's claim, so attempts never drive one record twice,
 * here or in another process. Passes never overlap; `stop()` waits for the one running.
 */
export class RecoveryPoller {
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly config: PollerConfig) {}

  start(): void {
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#pass;
  }

  /** One pass over every due record; resolves with how many were attempted. */
  async runOnce(): Promise<number> {
    const { storage, domain, clock, batchSize, concurrency } = this.config;
    const dueBefore = clock.now();
    const running = new Set<Promise<void>>();
    let cursor: string | undefined;
    let attempted = 0;
    try {
      do {
        const page = await storage.findStuck({
          domain,
          dueBefore,
          limit: batchSize,
          ...(cursor === undefined ? {} : { cursor }),
        });
        for (const record of page.records) {
          if (this.#stopped) return attempted;
          while (running.size >= concurrency) await Promise.race(running);
          attempted++;
          const attempt = this.#attempt(record.xid).finally(() => running.delete(attempt));
          running.add(attempt);
        }
        cursor = page.cursor;
      } while (cursor !== undefined);
      return attempted;
    } finally {
      await Promise.all(running);
    }
  }

  async #attempt(xid: string): Promise<void> {
    const { recover, onResult, onError } = this.config;
    try {
      // Not `onResult?.(await recover(xid))`: an optional call does not evaluate its
      // arguments when there is no callback, so nothing would be recovered at all.
      const result = await recover(xid);
      onResult?.(result);
    } catch (error) {
      onError(error);
    }
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#pass = this.runOnce()
        .then(
          () => {},
          (error: unknown) => this.config.onError(error),
        )
        .finally(() => {
          this.#pass = undefined;
          this.#schedule(this.config.intervalMs);
        });
    }, delay);
  }
}
