import type { LocalParticipant, TransactionStorage } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';

/**
 * The four writes the core scenario makes (create with the first participant, update with
 * the second, update CONFIRMING, remove), on records of the same shape and size, without the
 * SDK: what the store alone costs a transaction, so that the storage benchmark can tell it
 * apart from the SDK's own work in the same run.
 */
export function storeWritesOp(storage: TransactionStorage, domain: string): () => Promise<void> {
  let n = 0;
  return async () => {
    const id = `w-${++n}`;
    const now = Date.now();
    // The scenario's record: its deadline and due time a minute out, its try's claim on it.
    const record = makeRecord({
      domain,
      participants: [
        participant('p1', 'funds.freeze', 'Freeze', `[{"id":"${id}","account":"acct-1","amount":2}]`),
      ],
      deadline: now + 60_000,
      dueAt: now + 60_000,
      claim: { owner: `bench/${process.pid}`, until: now + 30_000 },
    });
    await storage.create(record);
    record.participants.push(
      participant('p2', 'stock.reserve', 'Reserve', `[{"id":"${id}","sku":"sku-1","quantity":2}]`),
    );
    record.version = 2;
    await storage.update(record, 1);
    record.status = 'CONFIRMING';
    record.version = 3;
    await storage.update(record, 2);
    await storage.remove(record.xid, 3);
  };
}

function participant(id: string, target: string, method: string, args: string): LocalParticipant {
  return {
    id,
    kind: 'local',
    target,
    confirm: `confirm${method}`,
    cancel: `cancel${method}`,
    args,
    status: 'TRYING',
  };
}
