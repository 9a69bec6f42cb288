import type { SqlRow } from '../client.js';
import { inlineParams } from './sql-literal.js';

/** What the queue needs of PGlite: `exec` answers one result per statement of the text. */
export interface PGliteExec {
  exec(text: string): Promise<ReadonlyArray<{ rows: unknown[] }>>;
}

interface Pending {
  readonly sql: string;
  readonly resolve: (rows: SqlRow[]) => void;
  readonly reject: (error: unknown) => void;
}

/** Most statements sent in one trip: bounds the text PGlite parses at once. */
const MAX_BATCH = 64;

/**
 * Runs the store's statements on PGlite, which is one connection running one statement at a
 * time, synchronously on this thread. Each costs a fixed trip into the engine that is several
 * times a small write's own work, so the statements issued during one turn of the event loop
 * (under load: those of every request whose data arrived in that turn) go together, parameters
 * inlined, as one multi-statement text, sent once the turn's I/O callbacks have run
 * (`setImmediate`). A lone statement waits for nothing else: only for the end of the turn.
 *
 * PostgreSQL runs a multi-statement text as one transaction: if any statement fails, none of
 * them took effect, and each is then run again alone so that every caller gets its own
 * outcome, as if it had been sent by itself.
 */
export class StatementQueue {
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(private readonly db: PGliteExec) {}

  query(text: string, params: readonly unknown[]): Promise<SqlRow[]> {
    let sql: string;
    try {
      sql = inlineParams(text, params);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ sql, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) await this.#send(this.#pending.splice(0, MAX_BATCH));
    } finally {
      this.#scheduled = false;
    }
  }

  async #send(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.#alone(batch[0]!);
    let results: ReadonlyArray<{ rows: unknown[] }>;
    try {
      results = await this.db.exec(batch.map((p) => p.sql).join(';\n'));
    } catch {
      // Rolled back as a whole: nothing of the batch is written. Each alone tells whose it was.
      for (const pending of batch) await this.#alone(pending);
      return;
    }
    if (results.length !== batch.length) {
      const error = new Error(`PGlite answered ${results.length} results to ${batch.length} statements`);
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const [i, pending] of batch.entries()) pending.resolve(results[i]!.rows as SqlRow[]);
  }

  async #alone(pending: Pending): Promise<void> {
    try {
      const [result] = await this.db.exec(pending.sql);
      pending.resolve((result?.rows ?? []) as SqlRow[]);
    } catch (error) {
      pending.reject(error);
    }
  }
}
