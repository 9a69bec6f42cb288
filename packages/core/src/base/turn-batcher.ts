import { InvalidOptionError } from './errors.js';

/** One item of a batch, and the way to answer the caller that added it. */
export interface Batched<T, R> {
  readonly item: T;
  /** Answers the item's caller; once an item is answered, later answers are ignored. */
  resolve(value: R): void;
  reject(error: unknown): void;
}

/** Options of a {@link TurnBatcher}. */
export interface TurnBatcherOptions {
  /**
   * When the batch goes: `'io'` (default) once the turn's I/O callbacks have run
   * (`setImmediate`), so the items of every request whose data arrived in that turn go
   * together; `'microtasks'` once the code running now and its microtasks are done
   * (`queueMicrotask`), which only groups what was added at once (`Promise.all`).
   */
  readonly after?: 'io' | 'microtasks';
  /** The most items handed to one `flush`; more are split over several, in order. */
  readonly maxBatch?: number;
  /**
   * One `flush` at a time (`concurrency: 1`): items added while one runs wait for it to end,
   * then go in the next batch at once (no wait for another turn). For a resource that takes one
   * request at a time, where what piles up during a trip is best sent as the next one.
   */
  readonly serial?: boolean;
  /**
   * At most this many `flush`es at once (default: no limit). Items added while that many run
   * wait for one to end, then go together at once: under load the batches grow instead of the
   * number of requests, where each request has a cost of its own.
   */
  readonly concurrency?: number;
}

/**
 * Gathers the items added during one turn of the event loop and hands them to `flush`
 * together, so that many callers share one write or one request. `add` resolves or rejects
 * with the item's own answer.
 *
 * `flush` answers each item (`resolve`/`reject`), at once or later, in any order. Every item
 * is answered exactly once: an item `flush` left unanswered when it returned (or when its
 * promise settled) gets its rejection, or if it succeeded an error saying nothing answered it;
 * no item is dropped or flushed twice.
 *
 * @example
 * const writes = new TurnBatcher<Row, void>(async (batch) => {
 *   await db.insertMany(batch.map((b) => b.item));
 *   for (const b of batch) b.resolve();
 * });
 * await Promise.all([writes.add(a), writes.add(b)]); // one insertMany
 */
export class TurnBatcher<T, R> {
  #items: Entry<T, R>[] = [];
  /** A `#run` is scheduled for the end of this turn. */
  #scheduled = false;
  /** Flushes started and not yet ended. */
  #running = 0;
  readonly #schedule: (run: () => void) => void;
  readonly #maxBatch: number;
  readonly #concurrency: number;
  readonly #run = (): void => {
    this.#scheduled = false;
    this.#start();
  };

  constructor(
    private readonly flush: (batch: Batched<T, R>[]) => Promise<void> | void,
    options: TurnBatcherOptions = {},
  ) {
    this.#schedule = options.after === 'microtasks' ? queueMicrotask : setImmediate;
    this.#maxBatch = options.maxBatch ?? Number.POSITIVE_INFINITY;
    const { concurrency } = options;
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) {
      throw new InvalidOptionError(
        `TurnBatcher: concurrency must be a whole number from 1, got ${String(concurrency)}`,
      );
    }
    this.#concurrency = options.serial ? 1 : (concurrency ?? Number.POSITIVE_INFINITY);
  }

  /** Adds `item` to this turn's batch; resolves or rejects with its answer. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#items.push(new Entry(item, resolve, reject));
      // At the limit, the item waits for a flush to end (`#ended`) instead of for the turn.
      if (!this.#scheduled && this.#running < this.#concurrency) {
        this.#scheduled = true;
        this.#schedule(this.#run);
      }
    });
  }

  /** Starts flushes of what is waiting, up to `maxBatch` items each, while the limit allows. */
  #start(): void {
    while (this.#running < this.#concurrency && this.#items.length > 0) {
      const batch = this.#items.splice(0, this.#maxBatch);
      this.#running++;
      void this.#flushOne(batch).then(this.#ended);
    }
  }

  readonly #ended = (): void => {
    this.#running--;
    // Items that waited for a free flush go now; those of a turn still open keep its schedule.
    if (!this.#scheduled) this.#start();
  };

  async #flushOne(batch: Entry<T, R>[]): Promise<void> {
    let failure: { readonly error: unknown } | undefined;
    try {
      await this.flush(batch);
    } catch (error) {
      failure = { error };
    }
    for (const entry of batch) {
      if (!entry.done) entry.reject(failure?.error ?? new UnansweredError());
    }
  }
}

/** Thrown to the caller of an item that a batch's `flush` returned without answering: a bug. */
class UnansweredError extends Error {
  constructor() {
    super('the batch was flushed without answering this item');
    this.name = 'UnansweredError';
  }
}

class Entry<T, R> implements Batched<T, R> {
  done = false;

  constructor(
    readonly item: T,
    private readonly onResolve: (value: R) => void,
    private readonly onReject: (error: unknown) => void,
  ) {}

  resolve(value: R): void {
    if (this.done) return;
    this.done = true;
    this.onResolve(value);
  }

  reject(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.onReject(error);
  }
}
