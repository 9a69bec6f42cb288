import type { TransactionRecord } from '@tcc/core';

/**
 * The records the scans of this process just read, handed to the jobs this process then runs,
 * so that a job need not read its record again (`recoverScanned`). In memory only:
 * job data stays `{ xid }`, so Redis stores and ships nothing more per job. A job run by another
 * process, or whose copy was dropped, reads the record itself as before.
 *
 * A copy may be stale (another process wrote the record since the scan): core then loses one
 * compare-and-set and reads the record afresh, so a stale copy costs a round trip, never a
 * wrong step. To keep that rare and the memory bounded, a copy is taken at most once, only by
 * a job's first attempt and only while younger than `maxAgeMs`, and at most `limit` copies are
 * kept (copies of jobs another process ran stay until they are too old).
 */
export class ScanHandover {
  readonly #copies = new Map<string, { readonly record: TransactionRecord; readonly at: number }>();

  constructor(
    readonly limit: number,
    readonly maxAgeMs: number,
  ) {}

  get size(): number {
    return this.#copies.size;
  }

  /**
   * Keeps the copies a scan has just read (a newer copy of an xid replaces the older one). When
   * `limit` copies are kept, the ones too old to be used go; if that is not enough, the rest of
   * these are not kept: the copies kept already belong to jobs enqueued earlier, which run sooner.
   */
  keep(records: readonly TransactionRecord[], at: number): void {
    const copies = this.#copies;
    for (const record of records) {
      copies.delete(record.xid);
      if (copies.size >= this.limit && !this.#dropOld(at)) return;
      copies.set(record.xid, { record, at });
    }
  }

  /** The copy of `xid`, if one is kept and young enough; it is not kept any longer. */
  take(xid: string, now: number): TransactionRecord | undefined {
    const copy = this.#copies.get(xid);
    if (copy === undefined) return undefined;
    this.#copies.delete(xid);
    return now - copy.at < this.maxAgeMs ? copy.record : undefined;
  }

  /** Drops the copies older than `maxAgeMs` (the oldest come first); true if room was made. */
  #dropOld(now: number): boolean {
    const copies = this.#copies;
    for (const [xid, copy] of copies) {
      if (now - copy.at < this.maxAgeMs) break;
      copies.delete(xid);
    }
    return copies.size < this.limit;
  }

  clear(): void {
    this.#copies.clear();
  }
}
