import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LocalParticipant, TransactionRecord, TransactionStatus } from '../storage/record.js';
import type { FindStuckQuery, ListQuery, TransactionStorage } from '../storage/transaction-storage.js';

/** How {@link describeStorageConformance} gets a store to test. */
export interface StorageHarness {
  /** A store over a fresh, empty namespace: every test assumes it sees only its own records. */
  create(): Promise<TransactionStorage>;
  /** Optional: drops what `create` made. Called after the store is closed. */
  destroy?(storage: TransactionStorage): Promise<void>;
}

/**
 * A valid ROOT record in TRYING, version 1, with a unique xid and one local participant.
 * `globalId` follows `xid`, `updatedAt` follows `createdAt`, and `dueAt` follows `updatedAt`
 * unless given.
 */
export function makeRecord(overrides: Partial<TransactionRecord> = {}): TransactionRecord {
  const xid = overrides.xid ?? randomUUID();
  const createdAt = overrides.createdAt ?? Date.now();
  const domain = overrides.domain ?? 'test';
  const updatedAt = overrides.updatedAt ?? createdAt;
  return {
    globalId: xid,
    xid,
    domain,
    rootDomain: domain,
    type: 'ROOT',
    status: 'TRYING',
    participants: [
      {
        id: 'p1',
        kind: 'local',
        target: 'capital.record',
        confirm: 'confirmRecord',
        cancel: 'cancelRecord',
        args: '[{"amount":100}]',
        status: 'TRYING',
      },
    ],
    attachments: {},
    retries: 0,
    version: 1,
    createdAt,
    updatedAt,
    deadline: createdAt + 30_000,
    dueAt: updatedAt,
    ...overrides,
  };
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Guards page loops, so a store whose cursor never ends fails instead of hanging. */
const MAX_PAGES = 1_000;
const STUCK: readonly TransactionStatus[] = ['TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING'];

/**
 * Defines the vitest suite every {@link TransactionStorage} must pass.
 *
 * Times are real (`Date.now()`-based) because remote stores expire tombstones with their own
 * clocks: a tombstone is written with `expiresAt` far in the past (gone at once) or far in the
 * future (kept); the suite never waits for time to pass.
 */
export function describeStorageConformance(name: string, harness: StorageHarness): void {
  describe(`TransactionStorage conformance: ${name}`, () => {
    let storage: TransactionStorage;

    beforeEach(async () => {
      storage = await harness.create();
    });

    afterEach(async () => {
      try {
        await storage.close();
      } finally {
        await harness.destroy?.(storage);
      }
    });

    /** Writes `record` with `changes` as the next version and returns what was written. */
    async function rewrite(
      record: TransactionRecord,
      changes: Partial<TransactionRecord>,
    ): Promise<TransactionRecord> {
      const next = { ...record, ...changes, version: record.version + 1 };
      await storage.update(next, record.version);
      return next;
    }

    async function complete(
      record: TransactionRecord,
      status: 'CONFIRMED' | 'CANCELLED',
      expiresAt: number,
    ): Promise<TransactionRecord> {
      const next = { ...record, status, expiresAt, version: record.version + 1 };
      await storage.complete(next, record.version);
      return next;
    }

    async function createAll(records: TransactionRecord[]): Promise<void> {
      // In chunks: remote stores get concurrency without an unbounded burst.
      for (let i = 0; i < records.length; i += 50) {
        await Promise.all(records.slice(i, i + 50).map((r) => storage.create(r)));
      }
    }

    async function stuckPages(query: Omit<FindStuckQuery, 'cursor'>): Promise<TransactionRecord[][]> {
      const pages: TransactionRecord[][] = [];
      let cursor: string | undefined;
      do {
        const page = await storage.findStuck(cursor === undefined ? query : { ...query, cursor });
        expect(page.records.length).toBeLessThanOrEqual(query.limit);
        pages.push(page.records);
        cursor = page.cursor;
        if (cursor !== undefined) expect(typeof cursor).toBe('string');
        if (pages.length > MAX_PAGES) throw new Error(`findStuck returned a cursor after ${MAX_PAGES} pages`);
      } while (cursor !== undefined);
      return pages;
    }

    async function listPages(query: Omit<ListQuery, 'cursor'> & { limit: number }) {
      const pages: TransactionRecord[][] = [];
      let cursor: string | undefined;
      do {
        const page = await storage.list(cursor === undefined ? query : { ...query, cursor });
        expect(page.records.length).toBeLessThanOrEqual(query.limit);
        pages.push(page.records);
        cursor = page.cursor;
        if (pages.length > MAX_PAGES) throw new Error(`list returned a cursor after ${MAX_PAGES} pages`);
      } while (cursor !== undefined);
      return pages;
    }

    async function stuckXids(domain: string, dueBefore = Date.now()): Promise<string[]> {
      return (await stuckPages({ domain, dueBefore, limit: 100 })).flat().map((r) => r.xid);
    }

    async function listXids(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<string[]> {
      return (await listPages({ ...query, limit: 100 })).flat().map((r) => r.xid);
    }

    async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
      await expect(promise).rejects.toMatchObject({ code });
    }

    /** A caller error: any TccError will do, as long as nothing is written. */
    async function expectRefused(promise: Promise<unknown>): Promise<void> {
      await expect(promise).rejects.toMatchObject({ code: expect.stringMatching(/^TCC_/) });
    }

    describe('create and get', () => {
      it('round-trips every field of a record', async () => {
        const base = Date.now() - HOUR;
        const record = makeRecord({
          globalId: randomUUID(),
          domain: 'capital',
          rootDomain: 'order',
          type: 'BRANCH',
          participants: [
            {
              ...(makeRecord().participants[0] as LocalParticipant),
              args: '[{"note":"quote \\" backslash \\\\ newline \\n nul \\u0000 emoji 💸"}]',
              status: 'TRIED',
            },
            {
              id: 'p2',
              kind: 'remote',
              endpoint: 'http://127.0.0.1:8080/api/.tcc',
              xid: randomUUID(),
              status: 'TRYING',
            },
          ],
          attachments: { tenant: 'acme', note: 'ünïcödé "quoted"\nline 2', empty: '' },
          retries: 3,
          createdAt: base,
          updatedAt: base + 1_234,
          deadline: base + 30_000,
          dueAt: base + 31_000,
          claim: { owner: 'host/123/ab12cd#7', until: base + 31_000 },
          parent: { domain: 'order', xid: randomUUID(), endpoint: 'http://127.0.0.1:4000/api' },
          keepFor: DAY,
          parkedAt: base + 2_000,
          lastError: 'Error: boom\n    at confirm (file.ts:1:1)',
          expiresAt: Date.now() + 30 * DAY,
        });
        await storage.create(record);
        expect(await storage.get(record.xid)).toStrictEqual(record);
      });

      it('keeps absent optional fields absent', async () => {
        const record = makeRecord();
        await storage.create(record);
        const stored = await storage.get(record.xid);
        expect(stored).toStrictEqual(record);
        for (const field of ['parkedAt', 'lastError', 'expiresAt', 'claim', 'parent', 'keepFor'])
          expect(stored).not.toHaveProperty(field);
      });

      it('returns undefined for an unknown xid', async () => {
        expect(await storage.get(randomUUID())).toBeUndefined();
      });

      it('refuses a duplicate xid and keeps the first record', async () => {
        const record = makeRecord();
        await storage.create(record);
        await expectCode(
          storage.create(makeRecord({ xid: record.xid, domain: 'other' })),
          'TCC_DUPLICATE_TRANSACTION',
        );
        expect(await storage.get(record.xid)).toStrictEqual(record);
      });

      it('lets exactly one of concurrent creates of one xid win', async () => {
        const xid = randomUUID();
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            storage.create(makeRecord({ xid, attachments: { i: `${i}` } })),
          ),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TCC_DUPLICATE_TRANSACTION' });
        }
      });

      it('refuses a record whose version is not 1', async () => {
        const record = makeRecord({ version: 2 });
        await expectRefused(storage.create(record));
        expect(await storage.get(record.xid)).toBeUndefined();
      });
    });

    describe('copies', () => {
      it('is not changed by mutating the record passed to create or update', async () => {
        const record = makeRecord({ attachments: { a: '1' } });
        const snapshot = structuredClone(record);
        await storage.create(record);
        mutate(record);
        expect(await storage.get(snapshot.xid)).toStrictEqual(snapshot);

        const next = { ...structuredClone(snapshot), status: 'CONFIRMING' as const, version: 2 };
        const nextSnapshot = structuredClone(next);
        await storage.update(next, 1);
        mutate(next);
        expect(await storage.get(snapshot.xid)).toStrictEqual(nextSnapshot);
      });

      it('is not changed by mutating a record it returned', async () => {
        const record = makeRecord({ createdAt: Date.now() - HOUR, attachments: { a: '1' } });
        await storage.create(record);
        const first = await storage.get(record.xid);
        expect(first).toBeDefined();
        mutate(first!);
        mutate(
          (await storage.findStuck({ domain: record.domain, dueBefore: Date.now(), limit: 10 })).records[0]!,
        );
        mutate((await storage.list({ limit: 10 })).records[0]!);
        const again = await storage.get(record.xid);
        expect(again).toStrictEqual(record);
        expect(again).not.toBe(await storage.get(record.xid));
      });
    });

    describe('update', () => {
      it('replaces the record when the expected version matches', async () => {
        const record = makeRecord();
        await storage.create(record);
        const confirming = await rewrite(record, {
          status: 'CONFIRMING',
          updatedAt: record.updatedAt + 10,
          retries: 1,
          attachments: { step: 'confirm' },
          participants: record.participants.map((p) => ({ ...p, status: 'CONFIRMED' as const })),
        });
        expect(await storage.get(record.xid)).toStrictEqual(confirming);
        const again = await rewrite(confirming, { retries: 2, lastError: 'timeout' });
        expect(await storage.get(record.xid)).toStrictEqual(again);
      });

      it('drops optional fields the new record leaves out', async () => {
        const record = makeRecord({ parkedAt: Date.now(), lastError: 'boom' });
        await storage.create(record);
        const { parkedAt: _parkedAt, lastError: _lastError, ...unparked } = record;
        const next = { ...unparked, version: 2 };
        await storage.update(next, 1);
        const stored = await storage.get(record.xid);
        expect(stored).toStrictEqual(next);
        expect(stored).not.toHaveProperty('parkedAt');
        expect(stored).not.toHaveProperty('lastError');
      });

      it('refuses a stale or future expected version and keeps the record', async () => {
        const record = makeRecord();
        await storage.create(record);
        const current = await rewrite(record, { retries: 1 });
        await expectCode(storage.update({ ...record, retries: 9, version: 2 }, 1), 'TCC_OPTIMISTIC_LOCK');
        await expectCode(storage.update({ ...record, retries: 9, version: 4 }, 3), 'TCC_OPTIMISTIC_LOCK');
        expect(await storage.get(record.xid)).toStrictEqual(current);
      });

      it('refuses to update a record that does not exist, without creating it', async () => {
        const record = makeRecord({ version: 2 });
        await expectCode(storage.update(record, 1), 'TCC_OPTIMISTIC_LOCK');
        expect(await storage.get(record.xid)).toBeUndefined();
      });

      it('refuses a record whose version is not expectedVersion + 1', async () => {
        const record = makeRecord();
        await storage.create(record);
        await expectRefused(storage.update({ ...record, retries: 5, version: 3 }, 1));
        await expectRefused(storage.update({ ...record, retries: 5, version: 1 }, 1));
        expect(await storage.get(record.xid)).toStrictEqual(record);
      });
    });

    describe('remove', () => {
      it('deletes only at the expected version', async () => {
        const record = makeRecord({ createdAt: Date.now() - HOUR });
        await storage.create(record);
        await expectCode(storage.remove(record.xid, 2), 'TCC_OPTIMISTIC_LOCK');
        expect(await storage.get(record.xid)).toStrictEqual(record);

        await storage.remove(record.xid, 1);
        expect(await storage.get(record.xid)).toBeUndefined();
        expect(await stuckXids(record.domain)).toEqual([]);
        expect(await storage.count({})).toBe(0);
        await expectCode(storage.remove(record.xid, 1), 'TCC_OPTIMISTIC_LOCK');
      });

      it('refuses to remove an unknown xid', async () => {
        await expectCode(storage.remove(randomUUID(), 1), 'TCC_OPTIMISTIC_LOCK');
      });

      it('frees the xid for a new record', async () => {
        const record = makeRecord();
        await storage.create(record);
        await storage.remove(record.xid, 1);
        const again = makeRecord({ xid: record.xid, domain: 'again' });
        await storage.create(again);
        expect(await storage.get(record.xid)).toStrictEqual(again);
      });
    });

    describe('complete', () => {
      it('keeps a tombstone until expiresAt that is no longer stuck', async () => {
        const record = makeRecord({ createdAt: Date.now() - HOUR });
        await storage.create(record);
        const confirming = await rewrite(record, { status: 'CONFIRMING' });
        expect(await stuckXids(record.domain)).toEqual([record.xid]);

        const tombstone = await complete(confirming, 'CONFIRMED', Date.now() + DAY);
        expect(await stuckXids(record.domain)).toEqual([]);
        expect(await storage.get(record.xid)).toStrictEqual(tombstone);
        expect(await listXids({ status: 'CONFIRMED' })).toEqual([record.xid]);
        expect(await storage.count({ status: 'CONFIRMED' })).toBe(1);
        await expectCode(storage.create(makeRecord({ xid: record.xid })), 'TCC_DUPLICATE_TRANSACTION');
        expect(await storage.get(record.xid)).toStrictEqual(tombstone);
      });

      it('forgets a record whose expiresAt is already past', async () => {
        const record = makeRecord({ createdAt: Date.now() - HOUR });
        await storage.create(record);
        const cancelling = await rewrite(record, { status: 'CANCELLING' });
        await complete(cancelling, 'CANCELLED', Date.now() - HOUR);
        expect(await storage.get(record.xid)).toBeUndefined();
        expect(await stuckXids(record.domain)).toEqual([]);
        expect(await listXids({})).toEqual([]);
        expect(await storage.count({})).toBe(0);
        const again = makeRecord({ xid: record.xid });
        await storage.create(again);
        expect(await storage.get(record.xid)).toStrictEqual(again);
      });

      it('is a compare-and-set like update', async () => {
        const record = makeRecord();
        await storage.create(record);
        const next = { ...record, status: 'CANCELLED' as const, expiresAt: Date.now() + DAY, version: 3 };
        await expectCode(storage.complete(next, 2), 'TCC_OPTIMISTIC_LOCK');
        await expectCode(storage.complete({ ...next, xid: randomUUID() }, 2), 'TCC_OPTIMISTIC_LOCK');
        expect(await storage.get(record.xid)).toStrictEqual(record);
      });

      it('refuses a terminal record without expiresAt', async () => {
        const record = makeRecord();
        await storage.create(record);
        await expectRefused(storage.complete({ ...record, status: 'CONFIRMED', version: 2 }, 1));
        expect(await storage.get(record.xid)).toStrictEqual(record);
      });

      it('accepts a terminal record created directly (empty rollback) as a tombstone', async () => {
        const kept = makeRecord({
          type: 'BRANCH',
          status: 'CANCELLED',
          createdAt: Date.now() - HOUR,
          expiresAt: Date.now() + DAY,
        });
        const gone = makeRecord({ type: 'BRANCH', status: 'CANCELLED', expiresAt: Date.now() - HOUR });
        await storage.create(kept);
        await storage.create(gone);
        expect(await storage.get(kept.xid)).toStrictEqual(kept);
        expect(await storage.get(gone.xid)).toBeUndefined();
        expect(await stuckXids(kept.domain)).toEqual([]);
        await expectCode(storage.create(makeRecord({ xid: kept.xid })), 'TCC_DUPLICATE_TRANSACTION');
      });
    });

    describe('findStuck', () => {
      it('returns every unfinished record (TRYING, TRIED, TRY_FAILED, CONFIRMING, CANCELLING), no tombstone', async () => {
        const old = Date.now() - HOUR;
        const byStatus = new Map<TransactionStatus, TransactionRecord>();
        for (const status of ['TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING'] as const) {
          const type = status === 'TRIED' || status === 'TRY_FAILED' ? 'BRANCH' : 'ROOT';
          const record = makeRecord({ status, type, createdAt: old });
          await storage.create(record);
          byStatus.set(status, record);
        }
        // One tombstone through complete, one created directly: neither is stuck.
        const confirmed = makeRecord({ status: 'CONFIRMING', createdAt: old });
        await storage.create(confirmed);
        await complete(confirmed, 'CONFIRMED', Date.now() + DAY);
        await storage.create(
          makeRecord({ status: 'CANCELLED', createdAt: old, expiresAt: Date.now() + DAY }),
        );

        const found = await stuckXids('test');
        expect(new Set(found)).toEqual(new Set(STUCK.map((s) => byStatus.get(s)!.xid)));
        expect(found).toHaveLength(5);
      });

      it('returns only records of the asked domain', async () => {
        const old = Date.now() - HOUR;
        const a = [
          makeRecord({ domain: 'a', createdAt: old }),
          makeRecord({ domain: 'a', createdAt: old + 1 }),
        ];
        const b = [makeRecord({ domain: 'b', createdAt: old })];
        await createAll([...a, ...b]);
        expect(await stuckXids('a')).toEqual(a.map((r) => r.xid));
        expect(await stuckXids('b')).toEqual(b.map((r) => r.xid));
        expect(await storage.findStuck({ domain: 'c', dueBefore: Date.now(), limit: 10 })).toStrictEqual({
          records: [],
        });
      });

      it('leaves out parked records, and follows parking and unparking', async () => {
        const old = Date.now() - HOUR;
        const parked = makeRecord({ status: 'CONFIRMING', createdAt: old, parkedAt: old, lastError: 'boom' });
        const active = makeRecord({ status: 'CANCELLING', createdAt: old + 1 });
        await createAll([parked, active]);
        expect(await stuckXids('test')).toEqual([active.xid]);

        const { parkedAt: _parkedAt, ...rest } = parked;
        const unparked = { ...rest, version: 2 };
        await storage.update(unparked, 1);
        await rewrite(active, { parkedAt: Date.now() });
        expect(await stuckXids('test')).toEqual([parked.xid]);
      });

      it('takes dueBefore strictly', async () => {
        const at = Date.now() - HOUR;
        const before = makeRecord({ createdAt: at - 1 });
        const exactly = makeRecord({ createdAt: at });
        const after = makeRecord({ createdAt: at + 1 });
        await createAll([before, exactly, after]);
        expect(await stuckXids('test', at)).toEqual([before.xid]);
        expect(await stuckXids('test', at + 1)).toEqual([before.xid, exactly.xid]);
        expect(await stuckXids('test', at + 2)).toEqual([before.xid, exactly.xid, after.xid]);
      });

      it('orders by (dueAt, xid), not by updatedAt, and follows updates of dueAt', async () => {
        const base = Date.now() - HOUR;
        const random = seeded(7);
        const records = Array.from({ length: 15 }, (_, i) =>
          makeRecord({
            createdAt: base - 10,
            updatedAt: base + 14 - i,
            dueAt: base + Math.floor(random() * 3),
          }),
        );
        await createAll(records);
        expect(await stuckXids('test')).toEqual(sortByDue(records).map((r) => r.xid));

        const first = sortByDue(records)[0]!;
        const moved = await rewrite(first, { dueAt: base + 5 });
        const expected = sortByDue(records.map((r) => (r.xid === moved.xid ? moved : r)));
        expect(await stuckXids('test')).toEqual(expected.map((r) => r.xid));
        expect(expected.at(-1)!.xid).toBe(moved.xid);
      });

      it('pages through equal dueAt ties, each record once, the last page without cursor', async () => {
        const at = Date.now() - HOUR;
        const records = Array.from({ length: 25 }, () => makeRecord({ createdAt: at }));
        await createAll(records);
        const pages = await stuckPages({ domain: 'test', dueBefore: Date.now(), limit: 10 });
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        expect(pages.flat().map((r) => r.xid)).toEqual(sortByDue(records).map((r) => r.xid));
      });

      it('does not lose or repeat unchanged records when another moves between pages', async () => {
        const base = Date.now() - HOUR;
        const records = Array.from({ length: 25 }, (_, i) => makeRecord({ createdAt: base + i * 10 }));
        await createAll(records);
        const query = { domain: 'test', dueBefore: base + 10 * MINUTE, limit: 10 };
        const first = await storage.findStuck(query);
        expect(first.records.map((r) => r.xid)).toEqual(records.slice(0, 10).map((r) => r.xid));
        expect(first.cursor).toBeDefined();

        // A seen record and an unseen one are retried: both move behind every other record.
        const seen = await rewrite(records[3]!, { dueAt: base + 500, retries: 1 });
        const unseen = await rewrite(records[15]!, { dueAt: base + 600, retries: 1 });
        const rest: TransactionRecord[] = [];
        let cursor = first.cursor;
        for (let n = 0; cursor !== undefined; n++) {
          if (n > MAX_PAGES) throw new Error('findStuck did not stop');
          const page = await storage.findStuck({ ...query, cursor });
          rest.push(...page.records);
          cursor = page.cursor;
        }

        const seenTimes = new Map<string, number>();
        for (const r of [...first.records, ...rest]) seenTimes.set(r.xid, (seenTimes.get(r.xid) ?? 0) + 1);
        for (const r of records) {
          if (r.xid === seen.xid) continue; // it may come again, at its new place
          expect(seenTimes.get(r.xid), `record ${records.indexOf(r)}`).toBe(1);
        }
        expect(rest.find((r) => r.xid === unseen.xid)).toStrictEqual(unseen);
        expect(rest.at(-1)!.xid).toBe(unseen.xid);
      });

      it('returns no cursor when the page holds everything', async () => {
        const records = Array.from({ length: 3 }, () => makeRecord({ createdAt: Date.now() - HOUR }));
        await createAll(records);
        const page = await storage.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 10 });
        expect(page.records).toHaveLength(3);
        expect(page.cursor).toBeUndefined();
      });
    });

    describe('list and count', () => {
      async function fixture(): Promise<Record<string, TransactionRecord>> {
        const base = Date.now() - HOUR;
        const records = {
          a1: makeRecord({ domain: 'a', createdAt: base }),
          a2: makeRecord({ domain: 'a', status: 'CONFIRMING', createdAt: base + 1, parkedAt: base + 5 }),
          a3: makeRecord({ domain: 'a', type: 'BRANCH', status: 'TRIED', createdAt: base + 2 }),
          a4: makeRecord({
            domain: 'a',
            type: 'BRANCH',
            status: 'CANCELLED',
            createdAt: base + 3,
            expiresAt: Date.now() + DAY,
          }),
          b1: makeRecord({ domain: 'b', createdAt: base + 4 }),
          b2: makeRecord({ domain: 'b', type: 'BRANCH', createdAt: base + 5, parkedAt: base + 6 }),
        };
        await createAll(Object.values(records));
        return records;
      }

      it.each<[string, Omit<ListQuery, 'limit' | 'cursor'>, string[]]>([
        ['no filter', {}, ['a1', 'a2', 'a3', 'a4', 'b1', 'b2']],
        ['domain', { domain: 'a' }, ['a1', 'a2', 'a3', 'a4']],
        ['status', { status: 'TRYING' }, ['a1', 'b1', 'b2']],
        ['terminal status', { status: 'CANCELLED' }, ['a4']],
        ['type', { type: 'BRANCH' }, ['a3', 'a4', 'b2']],
        ['parked', { parked: true }, ['a2', 'b2']],
        ['not parked', { parked: false }, ['a1', 'a3', 'a4', 'b1']],
        ['domain and type', { domain: 'b', type: 'ROOT' }, ['b1']],
        ['domain, status and parked', { domain: 'b', status: 'TRYING', parked: true }, ['b2']],
        ['unknown domain', { domain: 'c' }, []],
      ])('filters by %s, in (createdAt, xid) order', async (_name, filter, names) => {
        const records = await fixture();
        const expected = names.map((n) => records[n]!);
        expect((await storage.list({ ...filter, limit: 100 })).records).toStrictEqual(expected);
        expect(await storage.count(filter)).toBe(expected.length);
      });

      it('pages with a cursor in (createdAt, xid) order', async () => {
        const base = Date.now() - HOUR;
        const records = Array.from({ length: 25 }, (_, i) =>
          makeRecord({ domain: 'a', createdAt: base + (i % 5) }),
        );
        const others = Array.from({ length: 5 }, () => makeRecord({ domain: 'b', createdAt: base }));
        await createAll([...records, ...others]);
        const pages = await listPages({ domain: 'a', limit: 7 });
        expect(pages.slice(0, 3).map((p) => p.length)).toEqual([7, 7, 7]);
        const expected = [...records].sort(
          (x, y) => x.createdAt - y.createdAt || (x.xid < y.xid ? -1 : x.xid > y.xid ? 1 : 0),
        );
        expect(pages.flat().map((r) => r.xid)).toEqual(expected.map((r) => r.xid));
        expect((await listPages({ limit: 4 })).flat()).toHaveLength(30);
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of 8 racing updates win each round', async () => {
        const record = makeRecord();
        await storage.create(record);
        let current = record;
        for (let round = 0; round < 10; round++) {
          const attempts = Array.from({ length: 8 }, (_, writer) => ({
            ...current,
            version: current.version + 1,
            retries: current.retries + 1,
            attachments: { writer: `${writer}`, round: `${round}` },
          }));
          const results = await Promise.allSettled(attempts.map((a) => storage.update(a, current.version)));
          const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [attempts[i]!] : []));
          expect(winners, `round ${round}`).toHaveLength(1);
          for (const r of results) {
            if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TCC_OPTIMISTIC_LOCK' });
          }
          current = winners[0]!;
          expect(await storage.get(record.xid)).toStrictEqual(current);
        }
        expect(current.version).toBe(11);
      });
    });

    describe('volume', () => {
      it('pages findStuck through 500 records of two domains', async () => {
        const base = Date.now() - HOUR;
        const random = seeded(42);
        const statuses: TransactionStatus[] = ['TRYING', 'CONFIRMING', 'CANCELLING', 'TRIED', 'TRY_FAILED'];
        const records = Array.from({ length: 500 }, () => {
          const createdAt = base + Math.floor(random() * 100);
          return makeRecord({
            domain: random() < 0.7 ? 'x' : 'y',
            status: statuses[Math.floor(random() * statuses.length)]!,
            createdAt,
            ...(random() < 0.1 ? { parkedAt: createdAt } : {}),
          });
        });
        await createAll(records);

        const dueBefore = base + 80;
        const expected = sortByDue(
          records.filter(
            (r) =>
              r.domain === 'x' && STUCK.includes(r.status) && r.parkedAt === undefined && r.dueAt < dueBefore,
          ),
        );
        expect(expected.length).toBeGreaterThan(100);
        const pages = await stuckPages({ domain: 'x', dueBefore, limit: 37 });
        expect(pages.flat().map((r) => r.xid)).toEqual(expected.map((r) => r.xid));
        expect(await storage.count({ domain: 'x' })).toBe(records.filter((r) => r.domain === 'x').length);
      });
    });
  });
}

/** Changes every mutable part of a record, as a careless caller would. */
function mutate(record: TransactionRecord): void {
  record.status = 'CANCELLING';
  record.retries += 100;
  record.attachments.injected = 'yes';
  const participant = record.participants[0];
  if (participant !== undefined) participant.status = 'CANCELLED';
  record.participants.push({ id: 'px', kind: 'remote', endpoint: 'http://x', xid: 'x', status: 'TRYING' });
}

function sortByDue(records: TransactionRecord[]): TransactionRecord[] {
  return [...records].sort((a, b) => a.dueAt - b.dueAt || (a.xid < b.xid ? -1 : a.xid > b.xid ? 1 : 0));
}

/** A small deterministic generator (mulberry32), so a failing layout can be reproduced. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
