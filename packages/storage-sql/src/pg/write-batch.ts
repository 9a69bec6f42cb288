import { type Batched, TurnBatcher } from '@tcc/core/storage';
import { isConnectionLost } from '../client.js';
import { batchParams, type WriteKind } from './batch-statement.js';

/** One write of the log: its kind and the parameters of its single statement (the xid first). */
export interface LogWrite {
  readonly kind: WriteKind;
  readonly params: readonly unknown[];
}

/** How the batch reaches the database: the statement of one write, or of several. */
export interface WriteRunner {
  /** Runs one write as its single statement; resolves to the rows it changed (0 or 1). */
  single(write: LogWrite): Promise<number>;
  /** Runs the batch statement with these parameters (see batchParams); resolves to the xids it wrote. */
  batch(params: readonly string[]): Promise<string[]>;
}

/** Most writes in one statement: bounds its parameters. */
const MAX_BATCH = 128;

/**
 * Batches on their way at once. The writes issued while both are out wait for one to come back
 * and then go together, so under load the statements grow instead of their number: on the
 * place-order benchmark at c=64, 0.31 log statements per order instead of 0.74 and 6 to 20 %
 * more orders per second in alternating runs. One at a time went to 0.17, but then a single
 * statement waiting on a row lock would hold back every write of the store.
 */
const BATCHES_AT_ONCE = 2;

/**
 * Gathers the log writes issued during one turn of the event loop into one statement, so that
 * on a server they cost one round trip and one commit together instead of one each. Every
 * write keeps its own outcome: the statement returns the xids it wrote, and a write whose xid
 * is missing matched no row, as its single statement would have (a duplicate create, a lost
 * compare-and-set: the store then says which).
 *
 * - A lone write is sent as its single statement: a batch of one costs what it did.
 * - At most two statements are out at once (`BATCHES_AT_ONCE`); what is issued meanwhile goes
 *   in the next, as soon as one is back, without waiting for another turn.
 * - Writes to the same xid in one turn go in successive statements, in the order they were
 *   issued: one statement touches each row once.
 * - The statement is one transaction: if the server refuses it, none of it was written, and
 *   each write is run again alone, so that only a write that fails alone fails. If the
 *   connection is lost, whether it committed is unknown: every write of it gets that error.
 */
export class WriteBatch {
  readonly #writes: TurnBatcher<LogWrite, number>;

  constructor(private readonly runner: WriteRunner) {
    // Cut here rather than by the batcher: the pieces of one turn go in parallel, which must
    // not put two writes of one xid side by side.
    this.#writes = new TurnBatcher((batch) => this.#flush(batch), { concurrency: BATCHES_AT_ONCE });
  }

  /** Resolves to the rows the write changed (0 or 1), or rejects with the driver's error. */
  write(write: LogWrite): Promise<number> {
    return this.#writes.add(write);
  }

  async #flush(batch: Batched<LogWrite, number>[]): Promise<void> {
    for (const round of rounds(batch)) {
      const pieces: Batched<LogWrite, number>[][] = [];
      for (let i = 0; i < round.length; i += MAX_BATCH) pieces.push(round.slice(i, i + MAX_BATCH));
      await Promise.all(pieces.map((piece) => this.#send(piece)));
    }
  }

  async #send(piece: Batched<LogWrite, number>[]): Promise<void> {
    if (piece.length === 1) return this.#alone(piece[0]!);
    let written: Set<string>;
    try {
      written = new Set(await this.runner.batch(batchParams(piece.map((b) => b.item))));
    } catch (error) {
      if (isConnectionLost(error)) {
        for (const b of piece) b.reject(error);
        return;
      }
      await Promise.all(piece.map((b) => this.#alone(b)));
      return;
    }
    for (const b of piece) b.resolve(written.has(String(b.item.params[0])) ? 1 : 0);
  }

  async #alone(b: Batched<LogWrite, number>): Promise<void> {
    try {
      b.resolve(await this.runner.single(b.item));
    } catch (error) {
      b.reject(error);
    }
  }
}

/** The batch cut so that each xid is in a round at most once, its writes in issue order. */
function rounds<B extends { item: LogWrite }>(batch: readonly B[]): B[][] {
  const out: B[][] = [];
  const seen = new Map<unknown, number>();
  for (const b of batch) {
    const xid = b.item.params[0];
    const round = seen.get(xid) ?? 0;
    seen.set(xid, round + 1);
    if (round === out.length) out.push([]);
    out[round]!.push(b);
  }
  return out;
}
