import { randomUUID } from 'node:crypto';
import type { LocalParticipant, TransactionRecord, TransactionStorage } from '@tcc/core';

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
    const record = recordOf(randomUUID(), domain, Date.now(), [
      participant('p1', 'funds.freeze', 'Freeze', `[{"id":"${id}","account":"acct-1","amount":2}]`),
    ]);
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

function recordOf(
  xid: string,
  domain: string,
  now: number,
  participants: LocalParticipant[],
): TransactionRecord {
  return {
    globalId: xid,
    xid,
    domain,
    rootDomain: domain,
    type: 'ROOT',
    status: 'TRYING',
    participants,
    attachments: {},
    retries: 0,
    version: 1,
    createdAt: now,
    updatedAt: now,
    deadline: now + 60_000,
    dueAt: now + 60_000,
    claim: { owner: `bench/${process.pid}`, until: now + 30_000 },
  };
}
