import { afterEach, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../src/storage/errors.js';
import { MemoryStorage } from '../src/storage/memory-storage.js';
import type { TransactionRecord } from '../src/storage/record.js';
import { describeEndToEnd, describeStorageConformance, makeRecord } from '../src/testing/index.js';

describeStorageConformance('MemoryStorage', { create: async () => new MemoryStorage() });
describeEndToEnd('MemoryStorage', { create: async () => new MemoryStorage() });

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  return {
    time: start,
    now() {
      return this.time;
    },
  };
}

function terminal(record: TransactionRecord, expiresAt: number): TransactionRecord {
  return { ...record, status: 'CONFIRMED', expiresAt, version: record.version + 1 };
}

describe('MemoryStorage', () => {
  const stores: MemoryStorage[] = [];
  function open(options?: ConstructorParameters<typeof MemoryStorage>[0]): MemoryStorage {
    const store = new MemoryStorage(options);
    stores.push(store);
    return store;
  }

  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  describe('when closed', () => {
    it('rejects every method with a StorageError, and closing again is harmless', async () => {
      const store = open();
      const record = makeRecord();
      await store.create(record);
      await store.close();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['create', () => store.create(makeRecord())],
        ['update', () => store.update({ ...record, version: 2 }, 1)],
        ['complete', () => store.complete(terminal(record, Date.now() + 1000), 1)],
        ['remove', () => store.remove(record.xid, 1)],
        ['get', () => store.get(record.xid)],
        ['findStuck', () => store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 1 })],
        ['list', () => store.list({})],
        ['count', () => store.count({})],
      ];
      for (const [name, call] of calls) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, name).toBeInstanceOf(StorageError);
        expect((error as Error).message, name).toBe('memory storage is closed');
      }
      await expect(store.close()).resolves.toBeUndefined();
      expect(store.stats()).toEqual({ records: 0, tombstones: 0, stuck: 0 });
    });
  });

  describe('query validation', () => {
    it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10'])(
      'refuses limit %s, naming it',
      async (limit) => {
        const store = open();
        const bad = limit as number;
        const shown = typeof limit === 'string' ? `"${limit}"` : String(limit);
        await expect(store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: bad })).rejects.toThrow(
          `findStuck: limit must be a positive integer, got ${shown}`,
        );
        await expect(store.list({ limit: bad })).rejects.toThrow(
          `list: limit must be a positive integer, got ${shown}`,
        );
      },
    );

    it('refuses a malformed or foreign cursor, naming it', async () => {
      const store = open();
      const old = Date.now() - 60_000;
      await store.create(makeRecord({ createdAt: old }));
      await store.create(makeRecord({ createdAt: old }));
      const stuckPage = await store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 1 });
      const listPage = await store.list({ limit: 1 });
      expect(stuckPage.cursor).toBeTypeOf('string');
      expect(listPage.cursor).toBeTypeOf('string');

      const query = { domain: 'test', dueBefore: Date.now(), limit: 1 };
      const foreign = Buffer.from('["findStuck","soon","x"]').toString('base64url');
      for (const cursor of ['not a cursor', '', foreign, listPage.cursor!]) {
        const error = await store.findStuck({ ...query, cursor }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StorageError);
        expect((error as Error).message).toBe(
          `findStuck: cursor ${JSON.stringify(cursor)} was not returned by findStuck`,
        );
      }
      await expect(store.list({ limit: 1, cursor: stuckPage.cursor! })).rejects.toThrow(
        `list: cursor "${stuckPage.cursor}" was not returned by list`,
      );
    });

    it('refuses a dueBefore that is not a number', async () => {
      const store = open();
      await expect(
        store.findStuck({ domain: 'test', dueBefore: undefined as unknown as number, limit: 1 }),
      ).rejects.toThrow('findStuck: dueBefore must be a number, got undefined');
    });

    it('refuses a sweep interval that is not a positive number', () => {
      expect(() => new MemoryStorage({ sweepIntervalMs: 0 })).toThrow(
        'MemoryStorage: sweepIntervalMs must be a positive number, got 0',
      );
    });
  });

  describe('caller errors', () => {
    it('names the record and the bad value', async () => {
      const store = open();
      const record = makeRecord({ xid: 'x-1' });
      await expect(store.create({ ...record, version: 0 })).rejects.toThrow(
        'create of transaction x-1: version must be 1, got 0',
      );
      await store.create(record);
      await expect(store.update({ ...record, version: 3 }, 1)).rejects.toThrow(
        'update of transaction x-1: record.version must be expectedVersion + 1 = 2, got 3',
      );
      await expect(store.complete({ ...record, status: 'CONFIRMED', version: 2 }, 1)).rejects.toThrow(
        'complete of transaction x-1: a CONFIRMED record needs expiresAt, got undefined',
      );
      await expect(store.complete({ ...record, status: 'CONFIRMING', version: 2 }, 1)).rejects.toThrow(
        'complete of transaction x-1: status CONFIRMING is not terminal (CONFIRMED or CANCELLED)',
      );
      await expect(store.update({ ...record, status: 'CANCELLED', version: 2 }, 1)).rejects.toThrow(
        'update of transaction x-1: status CANCELLED is terminal, write it with complete()',
      );
      await expect(store.create(makeRecord({ status: 'CANCELLED', xid: 'x-2' }))).rejects.toThrow(
        'create of transaction x-2: a CANCELLED record needs expiresAt, got undefined',
      );
      await expect(store.create({ ...record, version: 0 })).rejects.toBeInstanceOf(StorageError);
      expect(await store.get('x-1')).toStrictEqual(record);
    });
  });

  describe('tombstones', () => {
    it('expire lazily on read at expiresAt of the injected clock', async () => {
      const clock = manualClock();
      const store = open({ clock });
      const record = makeRecord();
      await store.create(record);
      await store.complete(terminal(record, clock.time + 1_000), 1);

      clock.time += 999;
      expect((await store.get(record.xid))?.status).toBe('CONFIRMED');
      clock.time += 1;
      expect(await store.get(record.xid)).toBeUndefined();
      expect(store.stats()).toEqual({ records: 0, tombstones: 0, stuck: 0 });
      await store.create(record);
    });

    it('are not kept at all when expiresAt has already passed', async () => {
      const clock = manualClock();
      const store = open({ clock });
      const record = makeRecord();
      await store.create(record);
      await store.complete(terminal(record, clock.time), 1);
      await store.create(makeRecord({ status: 'CANCELLED', expiresAt: clock.time - 1 }));
      expect(store.stats()).toEqual({ records: 0, tombstones: 0, stuck: 0 });
    });

    it('are swept by sweep() and by the periodic timer', async () => {
      vi.useFakeTimers();
      const clock = manualClock();
      const store = open({ clock, sweepIntervalMs: 5_000 });
      const records = Array.from({ length: 4 }, () => makeRecord());
      for (const [i, record] of records.entries()) {
        await store.create(record);
        await store.complete(terminal(record, clock.time + (i + 1) * 1_000), 1);
      }
      await store.create(makeRecord());
      expect(store.stats()).toEqual({ records: 5, tombstones: 4, stuck: 1 });

      clock.time += 2_000;
      expect(store.sweep()).toBe(2);
      expect(store.stats()).toEqual({ records: 3, tombstones: 2, stuck: 1 });

      clock.time += 10_000;
      vi.advanceTimersByTime(5_000);
      expect(store.stats()).toEqual({ records: 1, tombstones: 0, stuck: 1 });
      expect(store.sweep()).toBe(0);
    });

    it('hold memory flat: a finished transaction leaves nothing behind', async () => {
      const store = open();
      for (let i = 0; i < 1_000; i++) {
        const record = makeRecord();
        await store.create(record);
        await store.update({ ...record, status: 'CONFIRMING', version: 2 }, 1);
        await store.remove(record.xid, 2);
      }
      expect(store.stats()).toEqual({ records: 0, tombstones: 0, stuck: 0 });
    });
  });

  describe('findStuck', () => {
    it('keeps completed records out of the index it scans', async () => {
      const store = open();
      const old = Date.now() - 60_000;
      for (let i = 0; i < 10_000; i++) {
        const record = makeRecord({ createdAt: old, status: 'CONFIRMING' });
        await store.create(record);
        await store.complete(terminal(record, Date.now() + 3_600_000), 1);
      }
      const stuck = Array.from({ length: 5 }, (_, i) => makeRecord({ createdAt: old + i }));
      for (const record of stuck) await store.create(record);
      const parked = makeRecord({ createdAt: old, parkedAt: old });
      await store.create(parked);
      // Indexed, but not due yet: a branch waiting for its parent's command.
      await store.create(
        makeRecord({ createdAt: old, type: 'BRANCH', status: 'TRIED', dueAt: Date.now() + 60_000 }),
      );

      expect(store.stats()).toEqual({ records: 10_007, tombstones: 10_000, stuck: 6 });
      const page = await store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 100 });
      expect(page.records.map((r) => r.xid)).toEqual(stuck.map((r) => r.xid));

      const { parkedAt: _parkedAt, ...unparked } = parked;
      await store.update({ ...unparked, version: 2 }, 1);
      expect(store.stats().stuck).toBe(7);
    });

    it('moves a record between domain indexes when its domain changes', async () => {
      const store = open();
      const record = makeRecord({ domain: 'a', createdAt: Date.now() - 1_000 });
      await store.create(record);
      await store.update({ ...record, domain: 'b', version: 2 }, 1);
      const query = { dueBefore: Date.now(), limit: 10 };
      expect((await store.findStuck({ ...query, domain: 'a' })).records).toEqual([]);
      expect((await store.findStuck({ ...query, domain: 'b' })).records.map((r) => r.xid)).toEqual([
        record.xid,
      ]);
      expect(store.stats().stuck).toBe(1);
    });
  });
});
