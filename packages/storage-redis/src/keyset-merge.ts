import { compareKey, type PageKey } from '@tcc/core/storage';
import { COMMAND } from './commands.js';
import type { NodeCalls } from './node-calls.js';
import type { RedisNode } from './topology.js';

/** One sorted set of one bucket on one node: an index the store reads in keyset order. */
export interface IndexSource {
  readonly node: RedisNode;
  readonly bucket: number;
  readonly key: string;
}

/** One entry of an index: the xid and its score, with where it was read. */
export interface IndexEntry {
  readonly node: RedisNode;
  readonly bucket: number;
  readonly xid: string;
  readonly score: number;
}

/**
 * Reads many sorted sets (every bucket of every node) as one index in `(score, xid)` order:
 * each set is read from the same position and the parts are merged, so `findStuck` and `list`
 * page through all buckets and shards as if they were one set.
 */
export class KeysetMerge {
  readonly #calls: NodeCalls;

  constructor(calls: NodeCalls) {
    this.#calls = calls;
  }

  /**
   * One step of a keyset scan merged over `sources`: up to `n` entries after `after` from each,
   * merged in `(score, xid)` order and cut at the first place where a set that returned `n`
   * entries may hold more (past it, entries of that set could be missing). `done` when no set
   * has more.
   *
   * @param max the bound on scores, as `ZRANGE BYSCORE` takes it (`+inf`, `(<n>`).
   */
  async window(
    operation: string,
    sources: readonly IndexSource[],
    after: PageKey | undefined,
    n: number,
    max: string,
  ): Promise<{ entries: IndexEntry[]; done: boolean }> {
    const parts = await Promise.all(sources.map((s) => this.#range(operation, s, after, n, max)));
    let frontier: PageKey | undefined;
    const merged: IndexEntry[] = [];
    for (const part of parts) {
      merged.push(...part.entries);
      const last = part.entries[part.entries.length - 1];
      if (part.full && last !== undefined) {
        if (frontier === undefined || compareKey(last.score, last.xid, ...frontier) < 0) {
          frontier = [last.score, last.xid];
        }
      }
    }
    merged.sort(byKey);
    if (frontier === undefined) return { entries: merged, done: true };
    const [fs, fx] = frontier;
    return { entries: merged.filter((e) => compareKey(e.score, e.xid, fs, fx) <= 0), done: false };
  }

  /** Up to `n` entries of one sorted set strictly after `after` and below `max`. */
  async #range(
    operation: string,
    source: IndexSource,
    after: PageKey | undefined,
    n: number,
    max: string,
  ): Promise<{ entries: IndexEntry[]; full: boolean }> {
    const { node, bucket, key } = source;
    const reply = (await this.#calls.script(operation, node, COMMAND.range, [
      key,
      after === undefined ? '' : String(after[0]),
      after === undefined ? '' : after[1],
      max,
      n,
    ])) as unknown[];
    const entries = toPairs(reply).map(([xid, score]) => ({ node, bucket, xid, score }));
    return { entries, full: entries.length >= n };
  }
}

const byKey = (a: IndexEntry, b: IndexEntry) => compareKey(a.score, a.xid, b.score, b.xid);

/** A `WITHSCORES` reply as `[member, score]` pairs: ioredis 6 nests them, older versions do not. */
function toPairs(reply: readonly unknown[]): [string, number][] {
  const pairs: [string, number][] = [];
  if (reply.length > 0 && Array.isArray(reply[0])) {
    for (const pair of reply as [unknown, unknown][]) pairs.push([String(pair[0]), Number(pair[1])]);
  } else {
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), Number(reply[i + 1])]);
  }
  return pairs;
}
