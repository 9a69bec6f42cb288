/**
 * Hashing of xids to buckets and shards. Both are pure functions of the xid (a branch's xid
 * differs from its globalId, and `get(xid)` knows only the xid), stable across processes and
 * versions: changing them would strand stored records.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `text`. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** MurmurHash3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The bucket (hash tag) of an xid: `fnv1a(xid) % buckets`. */
export function bucketOf(xid: string, buckets: number): number {
  return fnv1a(xid) % buckets;
}

/**
 * Rendezvous (highest-random-weight) hashing: the shard whose `(seed, xid)` weight is highest.
 * Adding a shard moves only the keys it now wins (about 1/(n+1) of them); removing one moves
 * only its own keys. `seeds` are hashes of the shards' ids, so the answer does not depend on
 * the order of the list.
 */
export function rendezvous(xid: string, seeds: readonly number[]): number {
  if (seeds.length === 1) return 0;
  // A different hash than the bucket's, so shard and bucket choices are independent.
  const key = fmix32(fnv1a(`shard:${xid}`));
  let best = 0;
  let bestWeight = -1;
  for (let i = 0; i < seeds.length; i++) {
    const weight = fmix32(key ^ seeds[i]!);
    if (weight > bestWeight) {
      best = i;
      bestWeight = weight;
    }
  }
  return best;
}
