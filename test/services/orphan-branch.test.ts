import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONTEXT_HEADER, encodeContextHeader } from '@tcc/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness } from '../support/postgres.js';
import { freePort, until } from '../support/redis-servers.js';

// A branch that tried and never hears from its root, as real processes: the branch service
// (fixtures/orphan-branch.mjs, domain `capital`, recovery running) holds funds for a root
// service (fixtures/orphan-root.mjs, domain `order`) that SIGKILLs itself once the branch's try
// answered, before its commit point. Past the deadline and its grace the branch asks the root's
// address for the outcome. Each service keeps its log in a schema of its own on the machine's
// PostgreSQL: a restarted root opens the schema the killed one wrote, a wiped one a new schema.
// (PGlite would be as durable, but each fresh PGlite directory runs initdb, over ten seconds on
// a loaded machine, and this file needs five logs.) Both fixtures import `@tcc/core` and
// `@tcc/storage-sql` from dist, built in beforeAll.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const ROOT_SCRIPT = fileURLToPath(new URL('./fixtures/orphan-root.mjs', import.meta.url));
const BRANCH_SCRIPT = fileURLToPath(new URL('./fixtures/orphan-branch.mjs', import.meta.url));

/**
 * Bounds a service's start (Node, the packages, the log's migrations) and the wait for a branch
 * to end only so that a hang ends: a loaded machine may be slow, which is no failure.
 */
const START_MS = 180_000;
const SETTLE_MS = 90_000;
/**
 * The roots' try deadline: one try between two local processes must fit in it (else the branch
 * refuses the try as late). The branch acts only past it, so it also sets the test's length.
 */
const TRY_DEADLINE_MS = 5_000;
/** The branch's grace past the deadline before it asks, and the pause between its attempts. */
const RECOVER_AFTER_MS = 1_000;
const INTERVAL_MS = 200;
const TEST_MS = 2 * START_MS + 2 * SETTLE_MS;

interface Service {
  readonly url: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

interface BranchRecord {
  globalId: string;
  xid: string;
  type: 'ROOT' | 'BRANCH';
  status: string;
  retries: number;
  lastError?: string;
  parkedAt?: number;
  parent?: { domain: string; xid: string; endpoint?: string };
}

interface CapitalState {
  ledger: {
    accounts: Record<'alice' | 'bob' | 'carol', number>;
    holds: Record<string, { user: string; amount: number }>;
    spent: number;
  };
  calls: string[];
  records: BranchRecord[];
}

interface RootState {
  records: { globalId: string; xid: string; type: string; status: string }[];
}

const services: Service[] = [];
let postgres: PostgresHarness;
/** The schema of each log, by the name a test gives it. */
const schemas = new Map<string, string>();
let capital: Service;
/** A root that stays up: the address a stray try names as its parent. */
let liveRoot: Service;

function launch(script: string, name: string, port: number, vars: Record<string, string>): Promise<Service> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
  delete env.NODE_OPTIONS; // the child loads the packages from dist, whatever the runner set
  const child = spawn(process.execPath, [script], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const service: Service = { url: `http://127.0.0.1:${port}`, child, exited, output: () => out };
  services.push(service);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${START_MS} ms: ${out}`)),
      START_MS,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`ready ${name} `)) {
        clearTimeout(timer);
        resolve(service);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${out}`));
    });
  });
}

function schemaOf(log: string): string {
  if (!schemas.has(log)) schemas.set(log, postgres.schema());
  return schemas.get(log)!;
}

/** A root service on the log named `log` (the same name: the same log). */
function startRoot(port: number, log: string): Promise<Service> {
  return launch(ROOT_SCRIPT, 'order', port, {
    ROOT_PORT: String(port),
    DATABASE_URL: postgres.url,
    ROOT_SCHEMA: schemaOf(log),
    CAPITAL_URL: capital.url,
    ROOT_TIMEOUT_MS: String(TRY_DEADLINE_MS),
  });
}

async function capitalState(): Promise<CapitalState> {
  return (await (await fetch(`${capital.url}/state`)).json()) as CapitalState;
}

async function rootState(root: Service): Promise<RootState> {
  return (await (await fetch(`${root.url}/state`)).json()) as RootState;
}

function branchOf(s: CapitalState, globalId: string): BranchRecord {
  const found = s.records.filter((r) => r.globalId === globalId);
  expect(found, JSON.stringify(s.records)).toHaveLength(1);
  return found[0]!;
}

/** Everything the ledger was given, wherever it is now: no money is created or lost. */
function total(ledger: CapitalState['ledger']): number {
  const holds = Object.values(ledger.holds).reduce((sum, h) => sum + h.amount, 0);
  return Object.values(ledger.accounts).reduce((sum, n) => sum + n, 0) + holds + ledger.spent;
}

/** Polls the branch service until `check` holds, and returns the state that satisfied it. */
async function capitalWhen(what: string, check: (s: CapitalState) => boolean): Promise<CapitalState> {
  let last: CapitalState | undefined;
  let met: CapitalState | undefined;
  await until(
    what,
    async () => {
      last = await capitalState();
      if (!check(last)) return false;
      met = last;
      return true;
    },
    SETTLE_MS,
  ).catch((error) => {
    throw new Error(`${error}: ${JSON.stringify(last)}`);
  });
  return met!;
}

/** Waits until the branch of `globalId` is finished (or parked, which ends the wait too). */
function branchEnded(globalId: string): Promise<CapitalState> {
  return capitalWhen(`the branch of ${globalId} ended`, (s) => {
    const b = s.records.find((r) => r.globalId === globalId);
    return b !== undefined && (['CONFIRMED', 'CANCELLED'].includes(b.status) || b.parkedAt !== undefined);
  });
}

/** A root places an order and dies before its commit point: the request gets no answer. */
async function orderAndDie(root: Service, order: { orderId: string; user: string; amount: number }) {
  await expect(
    fetch(`${root.url}/order`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(order),
    }),
  ).rejects.toThrow();
  expect(await root.exited, root.output()).toEqual({ code: null, signal: 'SIGKILL' });
}

/** The hold of an order released, its account whole again, and nothing confirmed. */
function expectReleased(
  s: CapitalState,
  order: { orderId: string; user: keyof CapitalState['ledger']['accounts'] },
) {
  expect(s.ledger.holds[order.orderId]).toBeUndefined();
  expect(s.ledger.accounts[order.user]).toBe(100);
  expect(s.calls).not.toContain(`confirm:${order.orderId}`);
  expect(s.calls.filter((c) => c === `try:${order.orderId}`)).toHaveLength(1);
  expect(s.calls).toContain(`cancel:${order.orderId}`);
  expect(total(s.ledger)).toBe(300);
}

beforeAll(
  async () => {
    const build = spawnSync('npx', ['tsc', '-b', 'packages/storage-sql'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
    postgres = await openPostgres({ max: 2 });
    const capitalPort = await freePort();
    capital = await launch(BRANCH_SCRIPT, 'capital', capitalPort, {
      CAPITAL_PORT: String(capitalPort),
      DATABASE_URL: postgres.url,
      CAPITAL_SCHEMA: schemaOf('capital'),
      RECOVER_AFTER_MS: String(RECOVER_AFTER_MS),
      INTERVAL_MS: String(INTERVAL_MS),
    });
    liveRoot = await startRoot(await freePort(), 'order-live');
  },
  2 * START_MS + 120_000,
);

afterAll(async () => {
  for (const s of services) s.child.kill('SIGKILL');
  await Promise.all(services.map((s) => s.exited));
  await postgres?.end();
});

describe('a branch whose root never sends confirm or cancel, as separate processes', () => {
  it(
    'root SIGKILLed before its commit point: while it is down the branch counts failed questions and keeps the hold; restarted on its log, it cancels the branch',
    async () => {
      const order = { orderId: 'o-1', user: 'alice', amount: 30 } as const;
      const globalId = `order-${order.orderId}`;
      const port = await freePort();
      const root = await startRoot(port, 'order-1');
      await orderAndDie(root, order);

      const tried = await capitalWhen('the branch ended its try', (s) =>
        s.records.some((r) => r.globalId === globalId && r.status !== 'TRYING'),
      );
      expect(branchOf(tried, globalId)).toMatchObject({
        type: 'BRANCH',
        status: 'TRIED',
        parent: { domain: 'order', xid: globalId, endpoint: root.url },
      });
      expect(tried.ledger.holds[order.orderId]).toEqual({ user: 'alice', amount: 30 });
      expect(tried.ledger.accounts.alice).toBe(70);

      // Nothing answers at the root's address: each question is a failed attempt, counted.
      const down = await capitalWhen('the branch counted two failed questions', (s) =>
        s.records.some((r) => r.globalId === globalId && r.retries >= 2),
      );
      const waiting = branchOf(down, globalId);
      expect(waiting).toMatchObject({
        status: 'TRIED',
        lastError: expect.stringContaining('asking order for the outcome failed'),
      });
      expect(waiting.parkedAt).toBeUndefined();
      expect(down.ledger.holds[order.orderId]).toEqual({ user: 'alice', amount: 30 });
      expect(total(down.ledger)).toBe(300);

      // Back on the same log and address, without recovery of its own: only the branch's
      // question can make it cancel its expired try.
      const restarted = await startRoot(port, 'order-1');
      const ended = await branchEnded(globalId);
      expect(branchOf(ended, globalId)).toMatchObject({ status: 'CANCELLED' });
      expect(branchOf(ended, globalId).parkedAt).toBeUndefined();
      expectReleased(ended, order);
      // The killed root's TRYING record survived on its log, and the question cancelled it.
      expect((await rootState(restarted)).records).toMatchObject([
        { globalId, xid: globalId, type: 'ROOT', status: 'CANCELLED' },
      ]);
    },
    TEST_MS,
  );

  it(
    'root SIGKILLed and restarted on an empty log at the same address: it has no record, and the branch cancels itself',
    async () => {
      const order = { orderId: 'o-2', user: 'bob', amount: 45 } as const;
      const globalId = `order-${order.orderId}`;
      const port = await freePort();
      const root = await startRoot(port, 'order-2');
      await orderAndDie(root, order);
      const wiped = await startRoot(port, 'order-2-wiped');

      const ended = await branchEnded(globalId);
      expect(branchOf(ended, globalId)).toMatchObject({
        type: 'BRANCH',
        status: 'CANCELLED',
        parent: { domain: 'order', xid: globalId, endpoint: root.url },
      });
      expect(branchOf(ended, globalId).parkedAt).toBeUndefined();
      expectReleased(ended, order);
      expect((await rootState(wiped)).records).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a stray unsigned try, for a transaction no root ever had, is cancelled by the root it names once its deadline has passed',
    async () => {
      const order = { orderId: 'o-3', user: 'carol', amount: 40 } as const;
      const globalId = 'stray-o-3';
      const header = encodeContextHeader(
        {
          globalId,
          xid: 'stray-o-3-capital',
          rootDomain: 'order',
          deadline: Date.now() + TRY_DEADLINE_MS,
          parent: { domain: 'order', xid: globalId, endpoint: liveRoot.url },
        },
        undefined,
        Date.now(),
      );
      const answer = await fetch(`${capital.url}/hold`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [CONTEXT_HEADER]: header },
        body: JSON.stringify(order),
      });
      expect(answer.status, await answer.text()).toBe(200);
      const held = await capitalState();
      expect(held.ledger.holds[order.orderId]).toEqual({ user: 'carol', amount: 40 });

      const ended = await branchEnded(globalId);
      expect(branchOf(ended, globalId)).toMatchObject({
        xid: 'stray-o-3-capital',
        status: 'CANCELLED',
        parent: { domain: 'order', xid: globalId, endpoint: liveRoot.url },
      });
      expect(branchOf(ended, globalId).parkedAt).toBeUndefined();
      expectReleased(ended, order);
      expect((await rootState(liveRoot)).records.filter((r) => r.globalId === globalId)).toEqual([]);
    },
    TEST_MS,
  );
});
