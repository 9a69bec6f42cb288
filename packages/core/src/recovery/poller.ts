import type { Clock } from '../clock.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import type { RecoveryResult } from './recoverer.js';

export interface PollerConfig {
  readonly domain: string;
  readonly storage: TransactionStorage;
  readonly clock: Clock;
  readonly recover: (xid: string) => Promise<RecoveryResult>;
  readonly intervalMs: number;
  readonly recoverAfterMs: number;
  readonly batchSize: number;
  readonly onResult: ((result: RecoveryResult) => void) | undefined;
  readonly onError: (error: unknown) => void;
}

/**
 * The in-process recovery driver of the embedded default: every `intervalMs` it pages through
 * the records of its domain that nobody has touched for `recoverAfterMs` and recovers each.
 * Passes never overlap; `stop()` waits for the one running.
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

  /** One pass over every stuck record; resolves with how many were attempted. */
  async runOnce(): Promise<number> {
    const { storage, domain, clock, recoverAfterMs, batchSize, recover, onResult, onError } = this.config;
    const updatedBefore = clock.now() - recoverAfterMs;
    let cursor: string | undefined;
    let attempted = 0;
    do {
      const page = await storage.findStuck({
        domain,
        updatedBefore,
        limit: batchSize,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const record of page.records) {
        if (this.#stopped) return attempted;
        attempted++;
        try {
          onResult?.(await recover(record.xid));
        } catch (error) {
          onError(error);
        }
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return attempted;
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
