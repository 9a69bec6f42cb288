import { StorageError } from '@tcc/core';
import { afterEach, describe, expect, it } from 'vitest';
import { contextHeader, origin, type Service, startService, tryRequest } from './support.js';

const services: Service[] = [];

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
});

/** A branch whose store fails its first write (the create with the first participant) with `error`. */
async function failingBranch(error: Error): Promise<Service> {
  const s = await startService('capital');
  services.push(s);
  s.storage.create = () => Promise.reject(error);
  return s;
}

const freeze = { orderId: 'o-1', user: 'alice', amount: 10 };

describe('a branch answers the errors of its try by their code', () => {
  it('a store error: 503 TCC_STORAGE, and the try does not run (the control case)', async () => {
    const s = await failingBranch(new StorageError('the store is down'));
    const answer = await tryRequest(s.url, contextHeader(origin()), freeze);
    expect(answer).toEqual({
      status: 503,
      body: { error: { code: 'TCC_STORAGE', message: 'the store is down' } },
    });
    expect(s.accounts.calls).toEqual([]);
  });

  it('the same from a store built on another copy of core (not a TccError of this one)', async () => {
    const foreign = Object.assign(new Error('the store is down'), {
      name: 'StorageError',
      code: 'TCC_STORAGE',
    });
    const s = await failingBranch(foreign);
    const answer = await tryRequest(s.url, contextHeader(origin()), freeze);
    expect(answer).toEqual({
      status: 503,
      body: { error: { code: 'TCC_STORAGE', message: 'the store is down' } },
    });
  });

  it("an error with a code of another library's own is not tcc's: the route's answer stands", async () => {
    const s = await failingBranch(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const answer = await tryRequest(s.url, contextHeader(origin()), freeze);
    // The test service's route answers 400 with the error's code.
    expect(answer).toEqual({
      status: 400,
      body: { error: { code: 'ECONNRESET', message: 'socket hang up' } },
    });
  });
});
