import { SIGNATURE_HEADER, Signer, signCommand } from '@tcc/core/http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { command, contextHeader, origin, SECRET, type Service, startService, tryRequest } from './support.js';

let capital: Service;
let snapshot: string;
let o: ReturnType<typeof origin>;

beforeAll(async () => {
  capital = await startService('capital', { secret: SECRET });
});
afterAll(() => capital.close());

/** Store and business state, to show that a refused request changed nothing. */
async function state(): Promise<string> {
  return JSON.stringify({
    records: await capital.records(),
    balances: [...capital.accounts.balances],
    frozen: [...capital.accounts.frozen],
    calls: capital.accounts.calls,
  });
}

beforeEach(async () => {
  // One TRIED branch for the commands to aim at.
  o = origin();
  const body = { orderId: o.xid, user: 'alice', amount: 1 };
  const tried = await tryRequest(capital.url, contextHeader(o, SECRET, Date.now(), body), body);
  expect(tried.status).toBe(200);
  snapshot = await state();
});

/**
 * A valid signature changed only in length. A prefix or an extension of the right signature is
 * what a comparison over the shorter of the two lengths would let through.
 */
const resized: [string, (signature: string) => string][] = [
  ['truncated to its first character', (s) => s.slice(0, 1)],
  ['one character short', (s) => s.slice(0, -1)],
  ['empty', () => ''],
  ['padded with one character', (s) => `${s}A`],
  ['padded to twice its length', (s) => s + s],
];

describe('a signature of the wrong length', () => {
  it.each(resized)('in tcc-context, %s: 401, the try does not run', async (_name, resize) => {
    const body = { orderId: 'len', user: 'alice', amount: 10 };
    const fields = contextHeader(origin(), SECRET, Date.now(), body).split(';');
    const signature = fields.pop()!;
    expect(signature.length).toBeGreaterThan(1);
    const header = [...fields, resize(signature)].join(';');
    const answer = await tryRequest(capital.url, header, body);
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(await state()).toBe(snapshot);
  });

  it.each(resized)(`in ${SIGNATURE_HEADER}, %s: 401, the branch is not confirmed`, async (_name, resize) => {
    const confirm = { action: 'confirm', globalId: o.globalId, xid: o.xid };
    const [issuedAt, signature] = signCommand(
      confirm as never,
      new Signer(SECRET),
      Date.now(),
      'capital',
    ).split(';') as [string, string];
    const answer = await command(capital.url, confirm, { signature: `${issuedAt};${resize(signature)}` });
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(await state()).toBe(snapshot);
  });

  it('the same header and command unchanged are accepted (the control case)', async () => {
    const fresh = origin();
    const body = { orderId: fresh.xid, user: 'alice', amount: 2 };
    const tried = await tryRequest(capital.url, contextHeader(fresh, SECRET, Date.now(), body), body);
    expect(tried.status).toBe(200);
    const confirm = { action: 'confirm', globalId: fresh.globalId, xid: fresh.xid };
    expect((await command(capital.url, confirm, { secret: SECRET })).status).toBe(200);
    expect(capital.accounts.calls.slice(-2)).toEqual([`try:${fresh.xid}`, `confirm:${fresh.xid}`]);
  });
});
