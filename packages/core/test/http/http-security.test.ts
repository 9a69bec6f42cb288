import { connect } from 'node:net';
import { COMMAND_PATH, CONTEXT_HEADER, Signer, signCommand } from '@tcc/core/http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { command, contextHeader, origin, SECRET, type Service, startService, tryRequest } from './support.js';

let capital: Service;
let o: ReturnType<typeof origin>;
let snapshot: string;

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
  expect(
    (await tryRequest(capital.url, contextHeader(o, SECRET, Date.now(), tried(o)), tried(o))).status,
  ).toBe(200);
  snapshot = await state();
});

const freeze = () => ({ orderId: 'sec', user: 'alice', amount: 10 });
const tried = (of: { xid: string }) => ({ orderId: of.xid, user: 'alice', amount: 1 });

describe('with a secret: signed context headers', () => {
  it.each([
    ['unsigned', () => contextHeader(origin())],
    ['forged (signed with another secret)', () => contextHeader(origin(), 'another-secret-of-enough-length')],
    ['expired (signed 2 minutes ago)', () => contextHeader(origin(), SECRET, Date.now() - 120_000, freeze())],
    [
      'replayed with a changed deadline',
      () => {
        const h = contextHeader(origin(), SECRET, Date.now(), freeze()).split(';');
        h[4] = String(Number(h[4]) + 3_600_000);
        return h.join(';');
      },
    ],
    [
      'replayed with a changed xid',
      () => {
        const h = contextHeader(origin(), SECRET, Date.now(), freeze()).split(';');
        h[2] = 'x-other';
        return h.join(';');
      },
    ],
  ])('%s: 401 and nothing changes', async (_name, header) => {
    const answer = await tryRequest(capital.url, header(), freeze());
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(await state()).toBe(snapshot);
  });

  it.each([
    ['not a tcc-context at all', 'hello'],
    ['an unknown version', '9;g;x;order;1'],
    ['a malformed globalId', '1;g/../../x;x;order;1'],
    ['a malformed deadline', '1;g;x;order;soon'],
    ['too many fields', '1;g;x;order;1;2;3;4'],
    ['an oversized header', `1;${'g'.repeat(600)};x;order;1`],
  ])('%s: 400 with a message, nothing changes', async (_name, header) => {
    const answer = await tryRequest(capital.url, header, freeze());
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({
      code: 'TCC_BAD_REQUEST',
      message: expect.stringContaining(CONTEXT_HEADER),
    });
    expect(await state()).toBe(snapshot);
  });
});

describe('with a secret: signed .tcc commands', () => {
  const confirm = () => ({ action: 'confirm', globalId: o.globalId, xid: o.xid });

  it('a correctly signed confirm is accepted (the control case)', async () => {
    expect((await command(capital.url, confirm(), { secret: SECRET })).status).toBe(200);
    expect(await state()).not.toBe(snapshot);
  });

  it.each([
    ['unsigned', () => ({ signature: null })],
    ['forged', () => ({ secret: 'another-secret-of-enough-length' })],
    [
      'expired',
      () => ({
        signature: signCommand(confirm() as never, new Signer(SECRET), Date.now() - 120_000, 'capital'),
      }),
    ],
    [
      'replayed with a changed action (a confirm signature on a cancel)',
      () => ({
        signature: signCommand(confirm() as never, new Signer(SECRET), Date.now(), 'capital'),
        body: { ...confirm(), action: 'cancel' },
      }),
    ],
    ['a malformed signature header', () => ({ signature: 'nonsense' })],
  ])('%s: 401 and nothing changes', async (_name, make) => {
    const { body, ...options } = make() as { body?: unknown; signature?: string | null; secret?: string };
    const answer = await command(capital.url, body ?? confirm(), options);
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(await state()).toBe(snapshot);
  });

  it.each([
    ['malformed JSON', { raw: '{"action": "confirm",' }, 400, 'malformed JSON'],
    ['a JSON array', { raw: '[1,2]' }, 400, 'expected a JSON object'],
    ['a missing xid', { raw: '{"action":"confirm","globalId":"g"}' }, 400, 'xid must be a string'],
    ['an oversized body', { raw: JSON.stringify({ pad: 'x'.repeat(30_000) }) }, 413, 'over the limit'],
  ])('%s: %i with a message, nothing changes', async (_name, options, status, message) => {
    const answer = await command(capital.url, undefined, { ...options, signature: null });
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatchObject({
      code: 'TCC_BAD_REQUEST',
      message: expect.stringContaining(message),
    });
    expect(await state()).toBe(snapshot);
  });

  it('an unknown action, even signed: 400, nothing changes', async () => {
    const body = { action: 'commit', globalId: o.globalId, xid: o.xid };
    const answer = await command(capital.url, body, { secret: SECRET });
    expect(answer).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining('unknown action') } },
    });
    expect(await state()).toBe(snapshot);
  });

  it('a GET of the endpoint: 405', async () => {
    const response = await fetch(`${capital.url}/${COMMAND_PATH}`);
    expect(response.status).toBe(405);
    expect(await state()).toBe(snapshot);
  });

  it('a body that never ends within the limit is cut off and the server keeps serving', async () => {
    const port = Number(new URL(capital.url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /${COMMAND_PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n`);
        // 32 KiB, over the default limit of 20,480 bytes, and no last chunk.
        socket.write(`8000\r\n${'x'.repeat(0x8000)}\r\n`);
      });
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk;
        if (data.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(data);
        }
      });
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(await state()).toBe(snapshot);
    expect((await command(capital.url, confirm(), { secret: SECRET })).status).toBe(200);
  });
});
