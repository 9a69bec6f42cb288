import { describe, expect, it } from 'vitest';
import { Tcc } from '../tcc.js';
import { ConfirmFailedError } from '../transaction/errors.js';
import { CountingStorage } from './counting-storage.js';
import type { StorageHarness } from './storage-conformance.js';

/**
 * A real `Tcc` on the store under test: a root with two participants confirmed in k + 2 writes,
 * cancelled when a try fails, and a confirm that fails part way left CONFIRMING for
 * `tcc.recover` to finish. What the conformance suite checks call by call, end to end.
 */
export function describeEndToEnd(name: string, harness: StorageHarness): void {
  describe(`a real Tcc on ${name}`, () => {
    async function setup() {
      const inner = await harness.create();
      const storage = new CountingStorage(inner);
      // recoverAfterMs 0: the recover() below comes right after the failed confirm.
      const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
      const calls: string[] = [];
      let failConfirmOnce = false;
      const step = (stepName: string) =>
        tcc.compensable(stepName, {
          try: async (id: string) => {
            calls.push(`${stepName}.try:${id}`);
            if (id === 'overdrawn') throw new Error(`${stepName}: overdrawn`);
          },
          confirm: async (id: string) => {
            if (stepName === 'b' && failConfirmOnce) {
              failConfirmOnce = false;
              calls.push(`${stepName}.confirm!`);
              throw new Error('warehouse down');
            }
            calls.push(`${stepName}.confirm:${id}`);
          },
          cancel: async (id: string) => {
            calls.push(`${stepName}.cancel:${id}`);
          },
        });
      const close = async () => {
        await tcc.stop();
        await inner.close();
        await harness.destroy?.(inner);
      };
      const failNextConfirm = () => {
        failConfirmOnce = true;
      };
      return { inner, storage, tcc, calls, a: step('a'), b: step('b'), failNextConfirm, close };
    }

    it('confirms both participants in k + 2 writes and leaves nothing behind', async () => {
      const { storage, tcc, calls, a, b, close } = await setup();
      await tcc.transaction(async () => {
        await a('1');
        await b('1');
      });
      expect(calls).toEqual(['a.try:1', 'b.try:1', 'a.confirm:1', 'b.confirm:1']);
      expect(storage.writes, storage.log.join(', ')).toBe(2 + 2);
      expect(storage.log).toEqual(['create TRYING', 'update TRYING', 'update CONFIRMING', 'remove']);
      expect(await storage.count({})).toBe(0);
      await close();
    });

    it('cancels the tries when one fails, and leaves nothing behind', async () => {
      const { storage, tcc, calls, a, b, close } = await setup();
      await expect(
        tcc.transaction(async () => {
          await a('1');
          await b('overdrawn');
        }),
      ).rejects.toThrow('b: overdrawn');
      expect(calls).toEqual(['a.try:1', 'b.try:overdrawn', 'b.cancel:overdrawn', 'a.cancel:1']);
      expect(await storage.count({})).toBe(0);
      await close();
    });

    it('keeps a partly failed confirm CONFIRMING, and tcc.recover finishes only the rest', async () => {
      const { inner, tcc, calls, a, b, failNextConfirm, close } = await setup();
      failNextConfirm();
      const error = await tcc
        .transaction(async () => {
          await a('1');
          await b('1');
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfirmFailedError);

      const [record] = (await inner.list({})).records;
      expect(record?.status).toBe('CONFIRMING');
      expect(record?.participants.map((p) => p.status)).toEqual(['CONFIRMED', 'TRYING']);
      expect(record?.lastError).toContain('warehouse down');
      const stuck = await inner.findStuck({ domain: 'order', dueBefore: Date.now() + 1, limit: 10 });
      expect(stuck.records.map((r) => r.xid)).toEqual([record!.xid]);

      const result = await tcc.recover(record!.xid);
      expect(result.outcome).toBe('confirmed');
      expect(calls.filter((c) => c.includes('.confirm'))).toEqual([
        'a.confirm:1',
        'b.confirm!',
        'b.confirm:1',
      ]);
      expect(await inner.count({})).toBe(0);
      expect(await inner.findStuck({ domain: 'order', dueBefore: Date.now() + 1, limit: 10 })).toEqual({
        records: [],
      });
      await close();
    });
  });
}
