import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  httpStatusOf,
  Tcc,
  TERMINAL_STATUSES,
  type TransactionRecord,
  type TransactionStatus,
  type TransactionStorage,
} from '@tcc/core';

/*
 * The world the protocol properties run in: runtimes of `order` (roots) and of `capital`
 * (branches) on one store, a network between them that the schedule controls, a clock it can
 * move, and counting participants with no barrier, whose calls are the evidence.
 */

/**
 * The claim length (and a branch's grace past its deadline), in the test clock's ms. Longer than
 * the deadline, so that a jump can pass the deadline while a try's claim still holds.
 */
export const LEASE_MS = 30_000;
/** The try deadline of every order, in the test clock's ms. */
export const DEADLINE_MS = 20_000;
/** Bounds a hang only: a healthy world finishes in a fraction of it. */
export const HANG_BOUND_MS = 60_000;
/**
 * How long a step waits for the world to come to rest (every operation finished or waiting on
 * a message the schedule holds). Past it the schedule goes on: a slow machine changes which
 * interleaving a step meets, never whether the properties hold.
 */
const REST_BOUND_MS = 1_000;

/** `Date.now()` moved forward by the schedule; every jump opens a new epoch. */
export class TestClock {
  offset = 0;
  epoch = 0;
  readonly now = (): number => Date.now() + this.offset;
  jump(ms: number): void {
    this.offset += ms;
    this.epoch++;
  }
}

// --- The store, observed and mortal ---------------------------------------------------------

const CONFIRM_SIDE = new Set<TransactionStatus>(['CONFIRMING', 'CONFIRMED']);
const CANCEL_SIDE = new Set<TransactionStatus>(['CANCELLING', 'CANCELLED']);

/** What was written, per record: every status a write landed with. */
export interface Written {
  readonly domain: string;
  readonly globalId: string;
  readonly statuses: Set<TransactionStatus>;
}

/** Notes the status of every write that landed, whoever wrote it. */
export class ObservedStorage implements TransactionStorage {
  readonly written = new Map<string, Written>();
  constructor(readonly inner: TransactionStorage) {}

  #note(record: TransactionRecord): void {
    const w = this.written.get(record.xid) ?? {
      domain: record.domain,
      globalId: record.globalId,
      statuses: new Set<TransactionStatus>(),
    };
    w.statuses.add(record.status);
    this.written.set(record.xid, w);
  }
  async create(record: TransactionRecord) {
    await this.inner.create(record);
    this.#note(record);
  }
  async update(record: TransactionRecord, expectedVersion: number) {
    await this.inner.update(record, expectedVersion);
    this.#note(record);
  }
  async complete(record: TransactionRecord, expectedVersion: number) {
    await this.inner.complete(record, expectedVersion);
    this.#note(record);
  }
  remove(xid: string, expectedVersion: number) {
    return this.inner.remove(xid, expectedVersion);
  }
  get(xid: string) {
    return this.inner.get(xid);
  }
  findStuck(query: Parameters<TransactionStorage['findStuck']>[0]) {
    return this.inner.findStuck(query);
  }
  list(query: Parameters<TransactionStorage['list']>[0]) {
    return this.inner.list(query);
  }
  count(query: Parameters<TransactionStorage['count']>[0]) {
    return this.inner.count(query);
  }
  close() {
    return this.inner.close();
  }
}

class Crashed extends Error {}

/**
 * One runtime's way to the store. Once `dead`, nothing the runtime does reaches the store any
 * more, as for a process that died; what it wrote before stays.
 */
class MortalStorage implements TransactionStorage {
  dead = false;
  constructor(readonly inner: TransactionStorage) {}
  #check(): void {
    if (this.dead) throw new Crashed('this runtime crashed');
  }
  async create(record: TransactionRecord) {
    this.#check();
    await this.inner.create(record);
  }
  async update(record: TransactionRecord, expectedVersion: number) {
    this.#check();
    await this.inner.update(record, expectedVersion);
  }
  async complete(record: TransactionRecord, expectedVersion: number) {
    this.#check();
    await this.inner.complete(record, expectedVersion);
  }
  async remove(xid: string, expectedVersion: number) {
    this.#check();
    await this.inner.remove(xid, expectedVersion);
  }
  async get(xid: string) {
    this.#check();
    return this.inner.get(xid);
  }
  async findStuck(query: Parameters<TransactionStorage['findStuck']>[0]) {
    this.#check();
    return this.inner.findStuck(query);
  }
  async list(query: Parameters<TransactionStorage['list']>[0]) {
    this.#check();
    return this.inner.list(query);
  }
  async count(query: Parameters<TransactionStorage['count']>[0]) {
    this.#check();
    return this.inner.count(query);
  }
  async close() {}
}

// --- The counting participants --------------------------------------------------------------

/** Every business call, by participant key (`order-1/hold-0`, `order-1/note`). */
export class Business {
  readonly tries = new Map<string, number>();
  readonly effects = new Map<string, { confirm: number; cancel: number }>();
  readonly violations: string[] = [];
  readonly #cancelBegun = new Set<string>();
  readonly #running = new Map<string, { phase: string; epoch: number; offset: number }[]>();
  /** Overlaps a clock jump past the claim explains (a driver frozen longer than its claim). */
  excusedOverlaps = 0;

  constructor(
    private readonly clock: TestClock,
    private readonly delayOf: (key: string) => number,
  ) {}

  tried(key: string): void {
    if (this.#cancelBegun.has(key)) this.violations.push(`the try of ${key} ran after its cancel began`);
    this.tries.set(key, (this.tries.get(key) ?? 0) + 1);
  }

  /**
   * A try that takes a while: from its start to its end no confirm or cancel of the same key may
   * begin (`settle` finds it running), or the cancel would run first and the try's effect stay.
   */
  async trying(key: string, body: () => Promise<void>): Promise<void> {
    this.tried(key);
    const running = this.#running.get(key) ?? [];
    this.#running.set(key, running);
    const me = { phase: 'try', epoch: this.clock.epoch, offset: this.clock.offset };
    running.push(me);
    try {
      await body();
    } finally {
      running.splice(running.indexOf(me), 1);
    }
  }

  async settle(phase: 'confirm' | 'cancel', key: string): Promise<void> {
    if (phase === 'cancel') this.#cancelBegun.add(key);
    const running = this.#running.get(key) ?? [];
    this.#running.set(key, running);
    const epoch = this.clock.epoch;
    for (const other of running) {
      // A try's claim is written just before it starts, so only jumps that add up to a whole
      // claim since then let it lapse; a confirm's or cancel's may be older (any jump excuses).
      const excused =
        other.phase === 'try' ? this.clock.offset - other.offset >= LEASE_MS : other.epoch !== epoch;
      if (!excused)
        this.violations.push(
          `${phase} of ${key} began while its ${other.phase} ran (no claim lapsed between)`,
        );
      else this.excusedOverlaps++;
    }
    const me = { phase, epoch, offset: this.clock.offset };
    running.push(me);
    try {
      const ms = this.delayOf(key);
      await (ms > 0 ? sleep(ms) : new Promise((resolve) => setImmediate(resolve)));
      const e = this.effects.get(key) ?? { confirm: 0, cancel: 0 };
      e[phase]++;
      this.effects.set(key, e);
    } finally {
      running.splice(running.indexOf(me), 1);
    }
  }
}

// --- The network ------------------------------------------------------------------------------

/** A request to `capital` held by the network until the schedule delivers it. */
interface Message {
  readonly n: number;
  readonly kind: 'try' | 'command';
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The transactions it concerns: a try's, or every command's of a batch. */
  readonly globalIds: readonly string[];
  /** The caller waiting for the answer; absent for a copy the network delivers again. */
  readonly res?: ServerResponse;
}

export type DeliveryMode =
  | 'once'
  /** Delivered, then again to the next runtime; the caller gets the second answer. */
  | 'twice'
  /** Delivered to two runtimes at once. */
  | 'together'
  /** Delivered; the answer is lost on the way back. */
  | 'lose-answer'
  /** Never delivered; the caller sees the connection fail. */
  | 'drop'
  /** Delivered and answered; a copy stays in the network and arrives again later. */
  | 'again-later'
  /** Delivered while the schedule goes on; answered whenever the runtime answers. */
  | 'background';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

function globalIdsOf(kind: 'try' | 'command', headers: Record<string, string>, body: string): string[] {
  try {
    if (kind === 'try') {
      const header = headers['tcc-context'];
      return header === undefined ? [] : [header.split(';')[1] ?? ''];
    }
    const parsed = JSON.parse(body) as { globalId?: string; commands?: { globalId?: string }[] };
    const commands = parsed.commands ?? [parsed];
    return commands.map((c) => String(c.globalId));
  } catch {
    return [];
  }
}

// --- The runtimes -----------------------------------------------------------------------------

interface Runtime {
  readonly tcc: Tcc;
  readonly storage: MortalStorage;
  readonly serve: (req: IncomingMessage, res: ServerResponse) => void;
  dead: boolean;
}

interface RootRuntime extends Runtime {
  /** Runs order `i` here: `holds` remote holds in `capital`, then a local note. */
  order(i: number, plan: OrderPlan): Promise<void>;
}

export interface OrderPlan {
  readonly holds: number;
  readonly together: boolean;
  readonly failLocally: boolean;
  readonly tryDelayMs: number;
  /** How long each business confirm and cancel of the order takes: a window for a second driver. */
  readonly settleDelayMs: number;
}

export const orderId = (i: number) => `order-${i}`;
const noteKey = (i: number) => `${orderId(i)}/note`;
const holdKey = (i: number, k: number) => `${orderId(i)}/hold-${k}`;

/** An operation of the schedule, running in the background. */
interface Op {
  readonly label: string;
  readonly globalId: string;
  readonly runtime: Runtime;
  readonly promise: Promise<unknown>;
  done: boolean;
}

export interface Tally {
  [what: string]: number;
}

export function count(tally: Tally, what: string): void {
  tally[what] = (tally[what] ?? 0) + 1;
}

async function listen(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class World {
  readonly clock: TestClock;
  readonly business: Business;
  readonly observed: ObservedStorage;
  readonly roots: RootRuntime[] = [];
  readonly capitals: Runtime[] = [];
  readonly #zombies: Runtime[] = [];
  readonly ops: Op[] = [];
  readonly parked: Message[] = [];
  readonly tally: Tally = {};
  readonly #plans = new Map<string, OrderPlan>();
  /** In the final phase the network delivers everything at once. */
  #passthrough = false;
  #messages = 0;
  #awaited = 0;
  #turn = 0;
  readonly #servers: Server[] = [];
  readonly #capitalUrls: string[] = [];
  #networkUrl = '';
  #rootUrl = '';
  readonly #background: Promise<unknown>[] = [];

  private constructor(clock: TestClock, store: TransactionStorage) {
    this.clock = clock;
    this.business = new Business(
      clock,
      (key) => this.#plans.get(key.slice(0, key.indexOf('/')))?.settleDelayMs ?? 0,
    );
    this.observed = new ObservedStorage(store);
  }

  /** `store` is given the world's clock, by which a store that keeps time (memory) ages tombstones. */
  static async open(
    store: (clock: TestClock) => Promise<TransactionStorage>,
    runtimes: { roots: number; capitals: number },
  ): Promise<World> {
    const clock = new TestClock();
    const world = new World(clock, await store(clock));
    await world.#listen(runtimes);
    return world;
  }

  async #listen(runtimes: { roots: number; capitals: number }): Promise<void> {
    // Where branches ask a root for its outcome: any live runtime of `order`, straight through.
    const rootServer = await listen((req, res) => {
      const live = this.roots.filter((r) => !r.dead);
      const r = live[this.#turn++ % live.length];
      if (r === undefined) return sendJson(res, 503, { error: { code: 'NO_RUNTIME' } });
      r.serve(req, res);
    });
    this.#servers.push(rootServer);
    this.#rootUrl = urlOf(rootServer);
    for (let k = 0; k < runtimes.capitals; k++) {
      const server = await listen((req, res) => this.capitals[k]!.serve(req, res));
      this.#servers.push(server);
      this.#capitalUrls.push(urlOf(server));
      this.capitals.push(this.#capital());
    }
    const network = await listen((req, res) => void this.#arrive(req, res));
    this.#servers.push(network);
    this.#networkUrl = urlOf(network);
    for (let k = 0; k < runtimes.roots; k++) this.roots.push(this.#root());
  }

  #options(storage: TransactionStorage) {
    return {
      storage,
      clock: this.clock,
      recovery: { recoverAfterMs: LEASE_MS, maxRetries: 1_000 },
    };
  }

  #capital(): Runtime {
    const storage = new MortalStorage(this.observed);
    const tcc = new Tcc({
      domain: 'capital',
      ...this.#options(storage),
      http: { commandTimeoutMs: HANG_BOUND_MS },
    });
    const hold = tcc.compensable('capital.hold', {
      propagation: 'MANDATORY',
      try: (key: string, delayMs: number) =>
        this.business.trying(key, async () => {
          if (delayMs > 0) await sleep(delayMs);
        }),
      confirm: (key: string) => this.business.settle('confirm', key),
      cancel: (key: string) => this.business.settle('cancel', key),
    });
    const handler = tcc.httpHandler();
    const route = async (req: IncomingMessage, res: ServerResponse) => {
      try {
        const { key, delayMs } = JSON.parse(await readBody(req)) as { key: string; delayMs: number };
        await hold(key, delayMs);
        sendJson(res, 200, { held: key });
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'ERROR';
        sendJson(res, httpStatusOf(code), { error: { code, message: String(error) } });
      }
    };
    return {
      tcc,
      storage,
      dead: false,
      serve: (req, res) => handler(req, res, () => void route(req, res)),
    };
  }

  #root(): RootRuntime {
    const storage = new MortalStorage(this.observed);
    const tcc = new Tcc({
      domain: 'order',
      ...this.#options(storage),
      timeoutMs: DEADLINE_MS,
      http: { url: this.#rootUrl, commandTimeoutMs: HANG_BOUND_MS },
    });
    const capital = tcc.http(this.#networkUrl, { timeoutMs: HANG_BOUND_MS });
    const note = tcc.compensable('order.note', {
      try: (key: string, fail: boolean) => {
        this.business.tried(key);
        if (fail) throw new Error('the order cannot be noted');
      },
      confirm: (key: string) => this.business.settle('confirm', key),
      cancel: (key: string) => this.business.settle('cancel', key),
    });
    const handler = tcc.httpHandler();
    return {
      tcc,
      storage,
      dead: false,
      serve: (req, res) => handler(req, res, () => sendJson(res, 404, { error: { code: 'NOT_FOUND' } })),
      order: async (i, plan) => {
        const holds = Array.from(
          { length: plan.holds },
          (_, k) => () => capital.post('/hold', { key: holdKey(i, k), delayMs: plan.tryDelayMs }),
        );
        await tcc.transaction(
          async () => {
            if (plan.together) await Promise.all(holds.map((h) => h()));
            else for (const h of holds) await h();
            await note(noteKey(i), plan.failLocally);
          },
          { id: orderId(i) },
        );
      },
    };
  }

  // --- The network's side -----------------------------------------------------------------

  async #arrive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && typeof value === 'string') headers[name] = value;
    }
    const path = req.url ?? '/';
    const kind = path.endsWith('/.tcc') ? 'command' : 'try';
    const message: Message = {
      n: this.#messages++,
      kind,
      method: req.method ?? 'POST',
      path,
      headers,
      body,
      globalIds: globalIdsOf(kind, headers, body),
      res,
    };
    count(this.tally, `sent:${kind}`);
    if (this.#passthrough) await this.#deliver(message, this.#turn++, 'once');
    else this.parked.push(message);
  }

  async #forward(message: Message, runtime: number): Promise<Answer | undefined> {
    const live = this.#liveCapitalSlots();
    const k = live[runtime % live.length]!;
    try {
      const response = await fetch(`${this.#capitalUrls[k]}${message.path}`, {
        method: message.method,
        headers: message.headers,
        ...(message.body === '' ? {} : { body: message.body }),
      });
      const answer: Answer = {
        status: response.status,
        headers: Object.fromEntries(
          [...response.headers].filter(([name]) => name === 'content-type' || name === 'retry-after'),
        ),
        body: await response.text(),
      };
      count(this.tally, `answer:${message.kind}:${answer.status}${codeOf(answer.body)}`);
      return answer;
    } catch {
      count(this.tally, `answer:${message.kind}:failed`);
      return undefined;
    }
  }

  #liveCapitalSlots(): number[] {
    return this.capitals.flatMap((c, k) => (c.dead ? [] : [k]));
  }

  #answer(message: Message, answer: Answer | undefined): void {
    const res = message.res;
    if (res === undefined || res.writableEnded || res.destroyed) return;
    if (answer === undefined) res.socket?.destroy();
    else res.writeHead(answer.status, answer.headers).end(answer.body);
  }

  async #deliver(message: Message, runtime: number, mode: DeliveryMode): Promise<void> {
    count(this.tally, `deliver:${mode}`);
    switch (mode) {
      case 'once':
      case 'background':
        return this.#answer(message, await this.#forward(message, runtime));
      case 'twice': {
        await this.#forward(message, runtime);
        return this.#answer(message, await this.#forward(message, runtime + 1));
      }
      case 'together': {
        const [first] = await Promise.all([
          this.#forward(message, runtime),
          this.#forward(message, runtime + 1),
        ]);
        return this.#answer(message, first);
      }
      case 'lose-answer':
        await this.#forward(message, runtime);
        return this.#answer(message, undefined);
      case 'drop':
        return this.#answer(message, undefined);
      case 'again-later': {
        this.#answer(message, await this.#forward(message, runtime));
        const { res: _caller, ...copy } = message;
        this.parked.push(copy);
        return;
      }
    }
  }

  /** Delivers the held message at `pick` (modulo what is held): any order is a reordering. */
  async deliver(pick: number, runtime: number, mode: DeliveryMode): Promise<void> {
    if (this.parked.length === 0) return count(this.tally, 'deliver:nothing-held');
    const [message] = this.parked.splice(pick % this.parked.length, 1);
    if (mode === 'background') {
      this.#background.push(this.#deliver(message!, runtime, mode));
      return this.rest();
    }
    this.#awaited++;
    try {
      await this.#deliver(message!, runtime, mode);
    } finally {
      this.#awaited--;
    }
    await this.rest();
  }

  // --- The schedule's other steps -------------------------------------------------------

  #start(label: string, globalId: string, runtime: Runtime, run: () => Promise<unknown>): Promise<void> {
    const op: Op = {
      label,
      globalId,
      runtime,
      done: false,
      promise: run().then(
        (value) => {
          op.done = true;
          const outcome = (value as { outcome?: string } | undefined)?.outcome ?? 'returned';
          count(this.tally, `${label}:${outcome}`);
        },
        (error: unknown) => {
          op.done = true;
          const code = error instanceof Crashed ? 'crashed' : ((error as { code?: string }).code ?? 'threw');
          count(this.tally, `${label}:${code}`);
        },
      ),
    };
    this.ops.push(op);
    return this.rest();
  }

  async begin(i: number, root: number, plan: OrderPlan): Promise<void> {
    this.#plans.set(orderId(i), plan);
    const r = this.roots[root % this.roots.length]!;
    return this.#start('order', orderId(i), r, () => r.order(i, plan));
  }

  /** `tcc.recover` from runtime `runtime` of `domain`, of order `order`'s root or one of its branches. */
  async recover(
    domain: 'order' | 'capital',
    runtime: number,
    order: number,
    branch: number,
    force: boolean,
  ): Promise<void> {
    const globalId = orderId(order);
    let xid: string | undefined = globalId;
    if (domain === 'capital') {
      const branches = [...this.observed.written].filter(
        ([, w]) => w.domain === 'capital' && w.globalId === globalId,
      );
      xid = branches.length === 0 ? undefined : branches[branch % branches.length]![0];
    }
    if (xid === undefined) return count(this.tally, 'recover:no-branch-yet');
    const runtimes = domain === 'order' ? this.roots : this.capitals;
    const r = runtimes[runtime % runtimes.length]!;
    const target = xid;
    return this.#start(`recover:${domain}`, globalId, r, () => r.tcc.recover(target, { force }));
  }

  /**
   * Runtime `runtime` of `domain` dies where it stands: it never reaches the store again and
   * its timers stop; a fresh runtime of the domain takes its place on the same store.
   */
  async crash(domain: 'order' | 'capital', runtime: number): Promise<void> {
    count(this.tally, `crash:${domain}`);
    const runtimes: Runtime[] = domain === 'order' ? this.roots : this.capitals;
    const k = runtime % runtimes.length;
    const old = runtimes[k]!;
    old.dead = true;
    old.storage.dead = true;
    this.#zombies.push(old);
    // Its in-flight work only meets a dead store from now on; its stop waits for nothing here.
    void old.tcc.stop().catch(() => {});
    runtimes[k] = domain === 'order' ? this.#root() : this.#capital();
    await this.rest();
  }

  async jump(ms: number): Promise<void> {
    count(this.tally, 'clock-jump');
    this.clock.jump(ms);
    await this.rest();
  }

  /**
   * Waits until every operation has ended or waits on a message the network holds, and no
   * delivery the schedule awaits is under way; bounded, see `REST_BOUND_MS`.
   */
  async rest(): Promise<void> {
    const started = Date.now();
    for (;;) {
      await sleep(2);
      const held = new Set(this.parked.flatMap((m) => (m.res === undefined ? [] : m.globalIds)));
      const resting = this.ops.every((op) => op.done || op.runtime.dead || held.has(op.globalId));
      if ((resting && this.#awaited === 0) || Date.now() - started > REST_BOUND_MS) return;
    }
  }

  // --- The end ------------------------------------------------------------------------------

  /**
   * Everything held is delivered, every operation ends, and recovery from the live runtimes
   * runs until no record is unfinished. A hang past `HANG_BOUND_MS` fails the run.
   */
  async quiesce(): Promise<void> {
    this.#passthrough = true;
    for (const message of this.parked.splice(0)) await this.#deliver(message, this.#turn++, 'once');
    // Far past every deadline, grace and claim: whatever is unfinished is due.
    this.clock.jump(10 * 60_000);
    const live = this.ops.filter((op) => !op.runtime.dead);
    const ended = Promise.all([...live.map((op) => op.promise), ...this.#background]);
    await bounded(ended, 'the operations of live runtimes did not end');
    const started = Date.now();
    for (let round = 0; ; round++) {
      const { records } = await this.observed.list({ limit: 1_000 });
      const open = records.filter((r) => !TERMINAL_STATUSES.has(r.status));
      if (open.length === 0) break;
      if (Date.now() - started > HANG_BOUND_MS) {
        const left = open.map((r) => `${r.domain} ${r.xid} ${r.status} (${r.lastError ?? 'no error'})`);
        throw new Error(`records not finished after ${HANG_BOUND_MS} ms of recovery: ${left.join('; ')}`);
      }
      for (const r of open) {
        const runtimes = r.domain === 'order' ? this.roots : this.capitals;
        const outcome = (await runtimes[round % runtimes.length]!.tcc.recover(r.xid, { force: true }))
          .outcome;
        count(this.tally, `quiesce:${outcome}`);
      }
      await sleep(5);
    }
  }

  /** The properties, on the store's records and on the participants' calls. */
  async violations(orders: readonly OrderPlan[]): Promise<string[]> {
    const found = [...this.business.violations];
    const { records } = await this.observed.list({ limit: 1_000 });
    const byXid = new Map(records.map((r) => [r.xid, r]));
    for (const [xid, w] of this.observed.written) {
      const statuses = [...w.statuses];
      if (statuses.some((s) => CONFIRM_SIDE.has(s)) && statuses.some((s) => CANCEL_SIDE.has(s)))
        found.push(`${w.domain} ${xid} was written both confirmed and cancelled: ${statuses.join(', ')}`);
      const end = byXid.get(xid)?.status;
      if (end !== undefined && !TERMINAL_STATUSES.has(end)) found.push(`${w.domain} ${xid} ends ${end}`);
      if (w.domain === 'order' && w.statuses.has('CONFIRMING') && end !== 'CONFIRMED')
        found.push(`${xid} passed its commit point but ends ${end ?? 'without a record'}`);
    }
    for (const [i, plan] of orders.entries()) {
      const id = orderId(i);
      const root = byXid.get(id);
      const keys = [noteKey(i), ...Array.from({ length: plan.holds }, (_, k) => holdKey(i, k))];
      const effects = keys.map((key) => [key, this.business.effects.get(key)] as const);
      if (root === undefined) {
        // Its runtime died before the root was written: nothing of it may have run.
        for (const [key, e] of effects)
          if (e !== undefined) found.push(`${key} has effects ${JSON.stringify(e)} but ${id} has no record`);
        continue;
      }
      count(this.tally, `ended:${root.status}`);
      for (const [key, e] of effects) {
        const { confirm, cancel } = e ?? { confirm: 0, cancel: 0 };
        if (confirm > 0 && cancel > 0) found.push(`${key} was both confirmed and cancelled (${id})`);
        if (root.status === 'CONFIRMED' && cancel > 0) found.push(`${key} cancelled, ${id} confirmed`);
        if (root.status === 'CANCELLED' && confirm > 0) found.push(`${key} confirmed, ${id} cancelled`);
        if (root.status === 'CONFIRMED' && confirm === 0)
          found.push(`${key} never confirmed, ${id} confirmed`);
      }
      for (const b of records.filter((r) => r.domain === 'capital' && r.globalId === id))
        if (b.status !== root.status)
          found.push(`branch ${b.xid} ends ${b.status}, its root ${id} ${root.status}`);
    }
    return found;
  }

  async close(): Promise<void> {
    for (const server of this.#servers) server.closeAllConnections();
    await Promise.all(this.#servers.map((s) => new Promise((resolve) => s.close(resolve))));
    const live = [...this.roots, ...this.capitals];
    await bounded(Promise.all(live.map((r) => r.tcc.stop())), 'the runtimes did not stop');
    await this.observed.close();
  }
}

function codeOf(body: string): string {
  const code = /"code":"([A-Z_]+)"/.exec(body)?.[1];
  return code === undefined ? '' : `:${code}`;
}

async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${HANG_BOUND_MS} ms`)), HANG_BOUND_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}
