import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until } from '../support/redis-servers.js';

// Three processes of test/services/fixtures/chain-service.mjs: A (the root) calls B as a remote
// branch, and B, while handling A's request, calls C with `tcc.http(...)`, so C is a remote
// participant of B's branch. The fixture imports `@tcc/core` from dist (built in beforeAll).
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./fixtures/chain-service.mjs', import.meta.url));

type Name = 'a' | 'b' | 'c';
const NAMES: readonly Name[] = ['a', 'b', 'c'];
const urls = {} as Record<Name, string>;
const children: ChildProcess[] = [];

interface ChainState {
  name: Name;
  ledger: { balance: number; holds: Record<string, number>; spent: number };
  runs: { try: number; confirm: number; cancel: number };
  recordCount: number;
  unfinished: number;
  records: {
    globalId: string;
    xid: string;
    type: 'ROOT' | 'BRANCH';
    status: string;
    rootDomain: string;
    participants: { kind: 'local' | 'remote'; status: string; endpoint?: string; xid?: string }[];
  }[];
}

/** Bounds a service's start and the wait for its records only so that a hang ends: a loaded machine may be slow. */
const START_MS = 180_000;
const SETTLE_MS = 60_000;

function launch(name: Name, port: number, next: string | undefined): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, CHAIN_NAME: name, CHAIN_PORT: String(port) };
  delete env.NODE_OPTIONS; // the child loads @tcc/core from dist, whatever the runner set
  if (next !== undefined) env.CHAIN_NEXT = next;
  const child = spawn(process.execPath, [SCRIPT], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${START_MS} ms: ${out}`)),
      START_MS,
    );
    const collect = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`ready ${name} `)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${out}`));
    });
  });
}

async function state(name: Name): Promise<ChainState> {
  return (await (await fetch(`${urls[name]}/state`)).json()) as ChainState;
}

async function states(): Promise<Record<Name, ChainState>> {
  const [a, b, c] = await Promise.all(NAMES.map(state));
  return { a: a!, b: b!, c: c! };
}

/** Waits until no service has an unfinished record, then returns the three states. */
async function settled(): Promise<Record<Name, ChainState>> {
  let last: Record<Name, ChainState> | undefined;
  await until(
    'every service finished its records',
    async () => {
      last = await states();
      return NAMES.every((n) => last![n].unfinished === 0);
    },
    SETTLE_MS,
  ).catch((error) => {
    throw new Error(`${error}: ${JSON.stringify(last)}`);
  });
  return last!;
}

async function order(body: { orderId: string; amount: number; refuseInA?: boolean }) {
  const response = await fetch(`${urls.a}/order`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The records of this service for one global transaction. */
function recordsOf(s: ChainState, globalId: string) {
  return s.records.filter((r) => r.globalId === globalId);
}

beforeAll(async () => {
  const build = spawnSync('npx', ['tsc', '-b', 'packages/core'], { cwd: repoRoot, encoding: 'utf8' });
  expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
  const ports = { a: await freePort(), b: await freePort(), c: await freePort() };
  for (const n of NAMES) urls[n] = `http://127.0.0.1:${ports[n]}`;
  await Promise.all([
    launch('c', ports.c, undefined),
    launch('b', ports.b, urls.c),
    launch('a', ports.a, urls.b),
  ]);
}, 600_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('nested branches over HTTP: A -> B -> C as three processes', () => {
  it('confirm path: A commits, and C confirms through B', async () => {
    const before = await states();
    expect(before.a.ledger.balance).toBe(100);

    const answer = await order({ orderId: 'n-ok', amount: 30 });
    expect(answer).toEqual({ status: 200, body: { status: 'CONFIRMED' } });

    const s = await settled();
    for (const n of NAMES) {
      expect(s[n].ledger, n).toEqual({ balance: 70, holds: {}, spent: 30 });
      expect(s[n].runs, n).toEqual({ try: 1, confirm: 1, cancel: 0 });
      expect(s[n].unfinished, n).toBe(0);
    }
    // The root's record is gone once every branch confirmed; B and C keep CONFIRMED tombstones.
    expect(s.a.recordCount).toBe(0);
    const [bBranch, ...bOthers] = s.b.records;
    expect(bOthers).toEqual([]);
    expect(bBranch).toMatchObject({
      type: 'BRANCH',
      status: 'CONFIRMED',
      rootDomain: 'a',
      participants: [
        { kind: 'local', status: 'CONFIRMED' },
        { kind: 'remote', endpoint: urls.c, status: 'CONFIRMED' },
      ],
    });
    // C is a branch of B's branch: same global transaction, enlisted by B (not by A).
    const cBranches = recordsOf(s.c, bBranch!.globalId);
    expect(cBranches).toHaveLength(1);
    expect(cBranches[0]).toMatchObject({ type: 'BRANCH', status: 'CONFIRMED', rootDomain: 'a' });
    expect(cBranches[0]!.xid).toBe(bBranch!.participants[1]!.xid);
    expect(s.c.records).toHaveLength(1);
  });

  it('cancel path: a try failing in A after B and C tried cancels C through B', async () => {
    const before = await states();
    const answer = await order({ orderId: 'n-no', amount: 20, refuseInA: true });
    expect(answer).toMatchObject({ status: 409, body: { status: 'CANCELLED', error: { code: 'Refused' } } });

    const s = await settled();
    // Nothing moved: every ledger is as it was, and no hold is left.
    for (const n of NAMES) {
      expect(s[n].ledger, n).toEqual(before[n].ledger);
      expect(s[n].unfinished, n).toBe(0);
    }
    // B and C tried and were cancelled.
    for (const n of ['b', 'c'] as const) {
      expect(s[n].runs, n).toEqual({
        try: before[n].runs.try + 1,
        confirm: before[n].runs.confirm,
        cancel: before[n].runs.cancel + 1,
      });
    }
    // A's own try ran and refused; its cancel runs too (it was enlisted before its try).
    expect(s.a.runs).toEqual({
      try: before.a.runs.try + 1,
      confirm: before.a.runs.confirm,
      cancel: before.a.runs.cancel + 1,
    });
    expect(s.a.recordCount).toBe(0);

    const bNew = s.b.records.filter((r) => !before.b.records.some((o) => o.xid === r.xid));
    expect(bNew).toHaveLength(1);
    expect(bNew[0]).toMatchObject({
      type: 'BRANCH',
      status: 'CANCELLED',
      rootDomain: 'a',
      participants: [{ kind: 'local' }, { kind: 'remote', endpoint: urls.c }],
    });
    const cNew = recordsOf(s.c, bNew[0]!.globalId);
    expect(cNew).toHaveLength(1);
    expect(cNew[0]).toMatchObject({
      type: 'BRANCH',
      status: 'CANCELLED',
      rootDomain: 'a',
      xid: bNew[0]!.participants[1]!.xid,
    });
  });
});
