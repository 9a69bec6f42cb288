// Propagation (DESIGN.md §5) of decorated methods, `tcc.compensable` functions and
// `tcc.transaction`, and what `tcc.current()` says inside each phase.
import {
  Compensable,
  MemoryStorage,
  Participant,
  type Propagation,
  Tcc,
  type TransactionContext,
  TransactionRequiredError,
} from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { describe, expect, it } from 'vitest';

type Snapshot = Pick<
  TransactionContext,
  'globalId' | 'xid' | 'domain' | 'rootDomain' | 'type' | 'phase' | 'participantId' | 'deadline'
>;

function snapshot(context: TransactionContext | undefined): Snapshot | undefined {
  if (context === undefined) return undefined;
  const { globalId, xid, domain, rootDomain, type, phase, participantId, deadline } = context;
  return { globalId, xid, domain, rootDomain, type, phase, participantId, deadline };
}

/** What ran, in order, and the transaction each step saw itself in. */
class World {
  readonly calls: string[] = [];
  readonly seen = new Map<string, Snapshot | undefined>();
  /** Work to do inside the confirm or cancel of a step, by `confirm:id` / `cancel:id`. */
  readonly during = new Map<string, () => Promise<unknown>>();

  constructor(readonly tcc: Tcc) {}

  /** Records `what` and the context in scope. */
  mark(what: string): void {
    this.calls.push(what);
    this.seen.set(what, snapshot(this.tcc.current()));
  }

  async try(id: string, fail: boolean): Promise<string> {
    this.mark(`try:${id}`);
    if (fail) throw new Error(`${id} failed`);
    return `${id}:ok`;
  }

  async settle(phase: 'confirm' | 'cancel', id: string): Promise<void> {
    this.mark(`${phase}:${id}`);
    await this.during.get(`${phase}:${id}`)?.();
  }

  context(what: string): Snapshot {
    const seen = this.seen.get(what);
    if (seen === undefined) throw new Error(`no transaction was in scope at ${what} (calls: ${this.calls})`);
    return seen;
  }
}

type Step = (id: string, fail?: boolean) => Promise<string>;
type Steps = Record<Propagation, Step>;

@Participant('steps')
class DecoratedSteps {
  constructor(readonly world: World) {}

  @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel' })
  async required(id: string, fail = false): Promise<string> {
    return this.world.try(id, fail);
  }

  @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel', propagation: 'REQUIRES_NEW' })
  async requiresNew(id: string, fail = false): Promise<string> {
    return this.world.try(id, fail);
  }

  @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel', propagation: 'MANDATORY' })
  async mandatory(id: string, fail = false): Promise<string> {
    return this.world.try(id, fail);
  }

  @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel', propagation: 'SUPPORTS' })
  async supports(id: string, fail = false): Promise<string> {
    return this.world.try(id, fail);
  }

  async confirm(id: string): Promise<void> {
    await this.world.settle('confirm', id);
  }

  async cancel(id: string): Promise<void> {
    await this.world.settle('cancel', id);
  }
}

const API = {
  decorated: {
    names: {
      REQUIRED: 'steps.required',
      REQUIRES_NEW: 'steps.requiresNew',
      MANDATORY: 'steps.mandatory',
      SUPPORTS: 'steps.supports',
    },
    build(tcc: Tcc, world: World): Steps {
      const steps = tcc.register(new DecoratedSteps(world));
      return {
        REQUIRED: (id, fail) => steps.required(id, fail),
        REQUIRES_NEW: (id, fail) => steps.requiresNew(id, fail),
        MANDATORY: (id, fail) => steps.mandatory(id, fail),
        SUPPORTS: (id, fail) => steps.supports(id, fail),
      };
    },
  },
  function: {
    names: {
      REQUIRED: 'fn.REQUIRED',
      REQUIRES_NEW: 'fn.REQUIRES_NEW',
      MANDATORY: 'fn.MANDATORY',
      SUPPORTS: 'fn.SUPPORTS',
    },
    build(tcc: Tcc, world: World): Steps {
      const make = (propagation: Propagation): Step =>
        tcc.compensable(`fn.${propagation}`, {
          propagation,
          try: (id: string, fail?: boolean) => world.try(id, fail ?? false),
          confirm: (id: string) => world.settle('confirm', id),
          cancel: (id: string) => world.settle('cancel', id),
        });
      return {
        REQUIRED: make('REQUIRED'),
        REQUIRES_NEW: make('REQUIRES_NEW'),
        MANDATORY: make('MANDATORY'),
        SUPPORTS: make('SUPPORTS'),
      };
    },
  },
} satisfies Record<string, { names: Record<Propagation, string>; build(tcc: Tcc, world: World): Steps }>;

const DOMAIN = 'prop';
const TIMEOUT_MS = 20_000;

function setup(api: keyof typeof API = 'decorated') {
  const storage = new CountingStorage(new MemoryStorage());
  // Finished roots are kept as CONFIRMED/CANCELLED tombstones, so their outcome can be read back.
  const tcc = new Tcc({ domain: DOMAIN, storage, retainMs: 60_000, timeoutMs: TIMEOUT_MS });
  const world = new World(tcc);
  const steps = API[api].build(tcc, world);
  return { storage, tcc, world, steps, names: API[api].names };
}

/** Stored records as `globalId -> { status, targets with their status }`. */
async function stored(storage: CountingStorage) {
  const out: Record<string, { type: string; status: string; participants: string[] }> = {};
  for (const r of (await storage.list({})).records) {
    expect(out[r.globalId], `two records of ${r.globalId}`).toBeUndefined();
    out[r.globalId] = {
      type: r.type,
      status: r.status,
      participants: r.participants.map(
        (p) => `${p.id}:${p.kind === 'local' ? p.target : p.endpoint}:${p.status}`,
      ),
    };
  }
  return out;
}

/** The context a root begun here has, with the given participant (undefined: its body). */
function rootContext(globalId: string, phase: Snapshot['phase'], participantId: string | undefined) {
  return {
    globalId,
    xid: globalId,
    domain: DOMAIN,
    rootDomain: DOMAIN,
    type: 'ROOT',
    phase,
    participantId,
    deadline: expect.any(Number),
  };
}

describe.each(['decorated', 'function'] as const)('propagation of %s participants', (api) => {
  describe('REQUIRED', () => {
    it('begins and confirms a root of its own outside a transaction', async () => {
      const { world, steps, storage, names } = setup(api);
      expect(await steps.REQUIRED('a')).toBe('a:ok');
      expect(world.calls).toEqual(['try:a', 'confirm:a']);
      const { globalId } = world.context('try:a');
      expect(world.context('try:a')).toEqual(rootContext(globalId, 'try', 'p1'));
      expect(world.context('confirm:a')).toEqual(rootContext(globalId, 'confirm', 'p1'));
      expect(await stored(storage)).toEqual({
        [globalId]: { type: 'ROOT', status: 'CONFIRMED', participants: [`p1:${names.REQUIRED}:CONFIRMED`] },
      });
    });

    it('joins the transaction in scope', async () => {
      const { tcc, world, steps, storage, names } = setup(api);
      await tcc.transaction(async () => {
        world.mark('body');
        await steps.REQUIRED('a');
        await steps.REQUIRED('b');
      });
      expect(world.calls).toEqual(['body', 'try:a', 'try:b', 'confirm:a', 'confirm:b']);
      const { globalId } = world.context('body');
      expect(world.context('try:a')).toEqual(rootContext(globalId, 'try', 'p1'));
      expect(world.context('try:b')).toEqual(rootContext(globalId, 'try', 'p2'));
      expect(await stored(storage)).toEqual({
        [globalId]: {
          type: 'ROOT',
          status: 'CONFIRMED',
          participants: [`p1:${names.REQUIRED}:CONFIRMED`, `p2:${names.REQUIRED}:CONFIRMED`],
        },
      });
    });

    it('is cancelled with the transaction it joined', async () => {
      const { tcc, world, steps, storage } = setup(api);
      await expect(
        tcc.transaction(async () => {
          world.mark('body');
          await steps.REQUIRED('a');
          await steps.REQUIRED('b', true);
        }),
      ).rejects.toThrow('b failed');
      expect(world.calls).toEqual(['body', 'try:a', 'try:b', 'cancel:b', 'cancel:a']);
      expect(Object.values(await stored(storage)).map((r) => r.status)).toEqual(['CANCELLED']);
    });
  });

  describe('REQUIRES_NEW', () => {
    it('begins an independent root inside a transaction: confirmed at once, kept when the outer one is cancelled', async () => {
      const { tcc, world, steps, storage, names } = setup(api);
      const boom = new Error('outer fails');
      await expect(
        tcc.transaction(async () => {
          world.mark('body');
          await steps.REQUIRED('outer');
          await steps.REQUIRES_NEW('inner');
          world.mark('body after inner');
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(world.calls).toEqual([
        'body',
        'try:outer',
        'try:inner',
        'confirm:inner',
        'body after inner',
        'cancel:outer',
      ]);
      const outer = world.context('body').globalId;
      const inner = world.context('try:inner').globalId;
      expect(inner).not.toBe(outer);
      expect(world.context('try:inner')).toEqual(rootContext(inner, 'try', 'p1'));
      expect(world.context('confirm:inner')).toEqual(rootContext(inner, 'confirm', 'p1'));
      // Back in the outer body once the inner root is done.
      expect(world.context('body after inner')).toEqual(rootContext(outer, 'try', undefined));
      expect(await stored(storage)).toEqual({
        [outer]: { type: 'ROOT', status: 'CANCELLED', participants: [`p1:${names.REQUIRED}:CANCELLED`] },
        [inner]: { type: 'ROOT', status: 'CONFIRMED', participants: [`p1:${names.REQUIRES_NEW}:CONFIRMED`] },
      });
    });

    it('is cancelled on its own when its try fails, without dooming the outer transaction', async () => {
      const { tcc, world, steps, storage } = setup(api);
      await tcc.transaction(async () => {
        world.mark('body');
        await steps.REQUIRED('outer');
        await expect(steps.REQUIRES_NEW('inner', true)).rejects.toThrow('inner failed');
      });
      expect(world.calls).toEqual(['body', 'try:outer', 'try:inner', 'cancel:inner', 'confirm:outer']);
      const outer = world.context('body').globalId;
      const inner = world.context('try:inner').globalId;
      const records = await stored(storage);
      expect(records[outer]?.status).toBe('CONFIRMED');
      expect(records[inner]?.status).toBe('CANCELLED');
      expect(Object.keys(records)).toHaveLength(2);
    });

    it('begins a root outside a transaction', async () => {
      const { world, steps, storage } = setup(api);
      expect(await steps.REQUIRES_NEW('a')).toBe('a:ok');
      expect(world.calls).toEqual(['try:a', 'confirm:a']);
      const { globalId } = world.context('try:a');
      expect(world.context('try:a')).toEqual(rootContext(globalId, 'try', 'p1'));
      expect((await stored(storage))[globalId]?.status).toBe('CONFIRMED');
    });
  });

  describe('MANDATORY', () => {
    it('refuses outside a transaction, without running the try or writing anything', async () => {
      const { world, steps, storage, names } = setup(api);
      const error = await steps.MANDATORY('a').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransactionRequiredError);
      expect(error).toMatchObject({ code: 'TCC_TRANSACTION_REQUIRED' });
      expect((error as Error).message).toContain(names.MANDATORY);
      expect(world.calls).toEqual([]);
      expect(storage.writes).toBe(0);
      expect(await stored(storage)).toEqual({});
    });

    it('joins the transaction in scope', async () => {
      const { tcc, world, steps, storage, names } = setup(api);
      await tcc.transaction(async () => {
        world.mark('body');
        await steps.REQUIRED('a');
        await steps.MANDATORY('b');
      });
      expect(world.calls).toEqual(['body', 'try:a', 'try:b', 'confirm:a', 'confirm:b']);
      const { globalId } = world.context('body');
      expect(world.context('try:b')).toEqual(rootContext(globalId, 'try', 'p2'));
      expect(await stored(storage)).toEqual({
        [globalId]: {
          type: 'ROOT',
          status: 'CONFIRMED',
          participants: [`p1:${names.REQUIRED}:CONFIRMED`, `p2:${names.MANDATORY}:CONFIRMED`],
        },
      });
    });
  });

  describe('SUPPORTS', () => {
    it('runs the try as a plain call outside a transaction: no record, no confirm or cancel', async () => {
      const { tcc, world, steps, storage } = setup(api);
      expect(await steps.SUPPORTS('a')).toBe('a:ok');
      await expect(steps.SUPPORTS('b', true)).rejects.toThrow('b failed');
      await tcc.stop();
      expect(world.calls).toEqual(['try:a', 'try:b']);
      expect(world.seen.get('try:a')).toBeUndefined();
      expect(world.seen.has('try:a')).toBe(true);
      expect(storage.writes).toBe(0);
      expect(await stored(storage)).toEqual({});
    });

    it('joins the transaction in scope, and is confirmed or cancelled with it', async () => {
      const { tcc, world, steps, storage, names } = setup(api);
      await tcc.transaction(async () => {
        world.mark('body');
        await steps.SUPPORTS('a');
      });
      const first = world.context('body').globalId;
      expect(world.context('try:a')).toEqual(rootContext(first, 'try', 'p1'));
      await expect(
        tcc.transaction(async () => {
          world.mark('body 2');
          await steps.SUPPORTS('b');
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      const second = world.context('body 2').globalId;
      expect(world.calls).toEqual(['body', 'try:a', 'confirm:a', 'body 2', 'try:b', 'cancel:b']);
      expect(await stored(storage)).toEqual({
        [first]: { type: 'ROOT', status: 'CONFIRMED', participants: [`p1:${names.SUPPORTS}:CONFIRMED`] },
        [second]: { type: 'ROOT', status: 'CANCELLED', participants: [`p1:${names.SUPPORTS}:CANCELLED`] },
      });
    });
  });

  describe('a call made inside a confirm or a cancel', () => {
    it('does not join the decided transaction: REQUIRED begins a root of its own', async () => {
      const { tcc, world, steps, storage, names } = setup(api);
      world.during.set('confirm:a', () => steps.REQUIRED('nested'));
      await tcc.transaction(async () => {
        world.mark('body');
        await steps.REQUIRED('a');
      });
      expect(world.calls).toEqual(['body', 'try:a', 'confirm:a', 'try:nested', 'confirm:nested']);
      const outer = world.context('body').globalId;
      const nested = world.context('try:nested').globalId;
      expect(nested).not.toBe(outer);
      expect(world.context('confirm:a')).toEqual(rootContext(outer, 'confirm', 'p1'));
      expect(world.context('try:nested')).toEqual(rootContext(nested, 'try', 'p1'));
      expect(await stored(storage)).toEqual({
        [outer]: { type: 'ROOT', status: 'CONFIRMED', participants: [`p1:${names.REQUIRED}:CONFIRMED`] },
        [nested]: { type: 'ROOT', status: 'CONFIRMED', participants: [`p1:${names.REQUIRED}:CONFIRMED`] },
      });
    });

    it('does not join the cancelled transaction either: its own root is confirmed', async () => {
      const { tcc, world, steps, storage } = setup(api);
      world.during.set('cancel:a', () => steps.REQUIRED('nested'));
      await expect(
        tcc.transaction(async () => {
          world.mark('body');
          await steps.REQUIRED('a');
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      expect(world.calls).toEqual(['body', 'try:a', 'cancel:a', 'try:nested', 'confirm:nested']);
      const outer = world.context('body').globalId;
      const nested = world.context('try:nested').globalId;
      expect(world.context('cancel:a')).toEqual(rootContext(outer, 'cancel', 'p1'));
      const records = await stored(storage);
      expect(records[outer]?.status).toBe('CANCELLED');
      expect(records[outer]?.participants).toHaveLength(1);
      expect(records[nested]?.status).toBe('CONFIRMED');
    });

    it('is refused for MANDATORY', async () => {
      const { tcc, world, steps, storage } = setup(api);
      let refusal: unknown;
      world.during.set('confirm:a', async () => {
        refusal = await steps.MANDATORY('nested').catch((e: unknown) => e);
      });
      await tcc.transaction(() => steps.REQUIRED('a'));
      expect(refusal).toBeInstanceOf(TransactionRequiredError);
      expect(world.calls).toEqual(['try:a', 'confirm:a']);
      const records = Object.values(await stored(storage));
      expect(records).toHaveLength(1);
      expect(records[0]?.participants).toHaveLength(1);
    });
  });
});

describe('tcc.transaction(body, { propagation })', () => {
  it('REQUIRED runs a nested body inside the transaction in scope', async () => {
    const { tcc, world, steps, storage } = setup();
    const result = await tcc.transaction(async () => {
      world.mark('outer');
      await steps.REQUIRED('a');
      const nested = await tcc.transaction(
        async () => {
          world.mark('nested');
          await steps.REQUIRED('b');
          return 'nested result';
        },
        { propagation: 'REQUIRED' },
      );
      world.mark('outer again');
      return nested;
    });
    expect(result).toBe('nested result');
    const { globalId } = world.context('outer');
    expect(world.context('nested')).toEqual(rootContext(globalId, 'try', undefined));
    expect(world.context('try:b')).toEqual(rootContext(globalId, 'try', 'p2'));
    expect(world.calls).toEqual([
      'outer',
      'try:a',
      'nested',
      'try:b',
      'outer again',
      'confirm:a',
      'confirm:b',
    ]);
    expect(Object.keys(await stored(storage))).toEqual([globalId]);
  });

  it('REQUIRED (the default) begins a root outside one', async () => {
    const { tcc, world, steps, storage } = setup();
    await tcc.transaction(
      async () => {
        world.mark('body');
        await steps.REQUIRED('a');
      },
      { propagation: 'REQUIRED' },
    );
    const { globalId } = world.context('body');
    expect(world.context('body')).toEqual(rootContext(globalId, 'try', undefined));
    expect((await stored(storage))[globalId]?.status).toBe('CONFIRMED');
  });

  it('a nested REQUIRED body that throws dooms the transaction only if the error escapes', async () => {
    const { tcc, world, steps } = setup();
    await expect(
      tcc.transaction(async () => {
        await steps.REQUIRED('a');
        await tcc.transaction(async () => {
          await steps.REQUIRED('b');
          throw new Error('nested failed');
        });
      }),
    ).rejects.toThrow('nested failed');
    expect(world.calls).toEqual(['try:a', 'try:b', 'cancel:b', 'cancel:a']);
  });

  it('REQUIRES_NEW begins an independent root whose outcome does not follow the outer one', async () => {
    const { tcc, world, steps, storage } = setup();
    await expect(
      tcc.transaction(async () => {
        world.mark('outer');
        await steps.REQUIRED('a');
        await tcc.transaction(
          async () => {
            world.mark('inner');
            await steps.REQUIRED('b');
          },
          { propagation: 'REQUIRES_NEW' },
        );
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    const outer = world.context('outer').globalId;
    const inner = world.context('inner').globalId;
    expect(inner).not.toBe(outer);
    expect(world.context('inner')).toEqual(rootContext(inner, 'try', undefined));
    expect(world.context('try:b')).toEqual(rootContext(inner, 'try', 'p1'));
    expect(world.calls).toEqual(['outer', 'try:a', 'inner', 'try:b', 'confirm:b', 'cancel:a']);
    expect(await stored(storage)).toEqual({
      [outer]: { type: 'ROOT', status: 'CANCELLED', participants: ['p1:steps.required:CANCELLED'] },
      [inner]: { type: 'ROOT', status: 'CONFIRMED', participants: ['p1:steps.required:CONFIRMED'] },
    });
  });

  it('REQUIRES_NEW: an inner root that fails is cancelled alone when the outer body catches it', async () => {
    const { tcc, world, steps, storage } = setup();
    await tcc.transaction(async () => {
      world.mark('outer');
      await steps.REQUIRED('a');
      await tcc
        .transaction(
          async () => {
            world.mark('inner');
            await steps.REQUIRED('b');
            throw new Error('inner fails');
          },
          { propagation: 'REQUIRES_NEW' },
        )
        .catch(() => {});
    });
    expect(world.calls).toEqual(['outer', 'try:a', 'inner', 'try:b', 'cancel:b', 'confirm:a']);
    const records = await stored(storage);
    expect(records[world.context('outer').globalId]?.status).toBe('CONFIRMED');
    expect(records[world.context('inner').globalId]?.status).toBe('CANCELLED');
  });

  it('MANDATORY refuses outside a transaction without running the body or writing anything', async () => {
    const { tcc, world, steps, storage } = setup();
    const error = await tcc
      .transaction(
        async () => {
          world.mark('body');
          await steps.REQUIRED('a');
        },
        { propagation: 'MANDATORY' },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionRequiredError);
    expect(error).toMatchObject({ code: 'TCC_TRANSACTION_REQUIRED' });
    expect((error as Error).message).toContain('tcc.transaction');
    expect(world.calls).toEqual([]);
    expect(storage.writes).toBe(0);
  });

  it('MANDATORY joins the transaction in scope', async () => {
    const { tcc, world, steps, storage } = setup();
    await tcc.transaction(async () => {
      world.mark('outer');
      await tcc.transaction(
        async () => {
          world.mark('nested');
          await steps.REQUIRED('a');
        },
        { propagation: 'MANDATORY' },
      );
    });
    const { globalId } = world.context('outer');
    expect(world.context('nested')).toEqual(rootContext(globalId, 'try', undefined));
    expect(world.context('try:a')).toEqual(rootContext(globalId, 'try', 'p1'));
    expect(Object.keys(await stored(storage))).toEqual([globalId]);
  });

  it('SUPPORTS outside runs the body as a plain call: each compensable call in it stands alone', async () => {
    const { tcc, world, steps, storage } = setup();
    let refusal: unknown;
    const result = await tcc.transaction(
      async () => {
        world.mark('body');
        await steps.REQUIRED('a');
        await steps.REQUIRED('b');
        refusal = await steps.MANDATORY('c').catch((e: unknown) => e);
        return 'plain';
      },
      { propagation: 'SUPPORTS' },
    );
    expect(result).toBe('plain');
    expect(world.seen.get('body')).toBeUndefined();
    expect(refusal).toBeInstanceOf(TransactionRequiredError);
    expect(world.calls).toEqual(['body', 'try:a', 'confirm:a', 'try:b', 'confirm:b']);
    const a = world.context('try:a').globalId;
    const b = world.context('try:b').globalId;
    expect(a).not.toBe(b);
    expect(await stored(storage)).toEqual({
      [a]: { type: 'ROOT', status: 'CONFIRMED', participants: ['p1:steps.required:CONFIRMED'] },
      [b]: { type: 'ROOT', status: 'CONFIRMED', participants: ['p1:steps.required:CONFIRMED'] },
    });
  });

  it('SUPPORTS outside writes nothing for a body without compensable calls', async () => {
    const { tcc, storage } = setup();
    expect(await tcc.transaction(() => 7, { propagation: 'SUPPORTS' })).toBe(7);
    await expect(
      tcc.transaction(
        () => {
          throw new Error('plain failure');
        },
        { propagation: 'SUPPORTS' },
      ),
    ).rejects.toThrow('plain failure');
    expect(storage.writes).toBe(0);
  });

  it('SUPPORTS joins the transaction in scope', async () => {
    const { tcc, world, steps, storage } = setup();
    await expect(
      tcc.transaction(async () => {
        world.mark('outer');
        await tcc.transaction(
          async () => {
            world.mark('nested');
            await steps.REQUIRED('a');
          },
          { propagation: 'SUPPORTS' },
        );
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    const { globalId } = world.context('outer');
    expect(world.context('nested')).toEqual(rootContext(globalId, 'try', undefined));
    expect(world.calls).toEqual(['outer', 'nested', 'try:a', 'cancel:a']);
    expect(await stored(storage)).toEqual({
      [globalId]: { type: 'ROOT', status: 'CANCELLED', participants: ['p1:steps.required:CANCELLED'] },
    });
  });

  it('inside a confirm, REQUIRED begins a new root and MANDATORY is refused', async () => {
    const { tcc, world, steps, storage } = setup();
    let refusal: unknown;
    world.during.set('confirm:a', async () => {
      await tcc.transaction(async () => {
        world.mark('in confirm');
        await steps.REQUIRED('nested');
      });
      refusal = await tcc
        .transaction(async () => world.mark('never'), { propagation: 'MANDATORY' })
        .catch((e) => e);
    });
    await tcc.transaction(async () => {
      world.mark('outer');
      await steps.REQUIRED('a');
    });
    const outer = world.context('outer').globalId;
    const inner = world.context('in confirm').globalId;
    expect(inner).not.toBe(outer);
    expect(world.context('in confirm')).toEqual(rootContext(inner, 'try', undefined));
    expect(refusal).toBeInstanceOf(TransactionRequiredError);
    expect(world.calls).toEqual([
      'outer',
      'try:a',
      'confirm:a',
      'in confirm',
      'try:nested',
      'confirm:nested',
    ]);
    const records = await stored(storage);
    expect(records[outer]?.participants).toEqual(['p1:steps.required:CONFIRMED']);
    expect(records[inner]?.participants).toEqual(['p1:steps.required:CONFIRMED']);
  });
});

describe('tcc.current()', () => {
  it('is undefined outside a transaction, and again after one', async () => {
    const { tcc } = setup();
    expect(tcc.current()).toBeUndefined();
    await tcc.transaction(async () => {
      expect(tcc.current()).toBeDefined();
    });
    expect(tcc.current()).toBeUndefined();
  });

  it('describes the root in its body, and each participant in its try, confirm and cancel', async () => {
    const { tcc, world, steps, storage } = setup();
    const before = Date.now();
    await expect(
      tcc.transaction(async () => {
        world.mark('body');
        await steps.REQUIRED('a');
        await steps.REQUIRED('b');
        world.mark('body end');
        const [record] = (await storage.list({})).records;
        expect(record?.deadline).toBe(tcc.current()?.deadline);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    const { globalId, deadline } = world.context('body');
    expect(deadline).toBeGreaterThanOrEqual(before + TIMEOUT_MS);
    expect(deadline).toBeLessThanOrEqual(Date.now() + TIMEOUT_MS);
    expect(world.context('body')).toEqual(rootContext(globalId, 'try', undefined));
    expect(world.context('try:a')).toEqual({ ...rootContext(globalId, 'try', 'p1'), deadline });
    expect(world.context('try:b')).toEqual({ ...rootContext(globalId, 'try', 'p2'), deadline });
    expect(world.context('body end')).toEqual(rootContext(globalId, 'try', undefined));
    expect(world.context('cancel:b')).toEqual({ ...rootContext(globalId, 'cancel', 'p2'), deadline });
    expect(world.context('cancel:a')).toEqual({ ...rootContext(globalId, 'cancel', 'p1'), deadline });
  });

  it('gives participants called concurrently their own participantId', async () => {
    const { tcc, world, steps } = setup();
    await tcc.transaction(async () => {
      await Promise.all(['a', 'b', 'c'].map((id) => steps.REQUIRED(id)));
      world.mark('body');
    });
    const ids = ['a', 'b', 'c'].map((id) => world.context(`try:${id}`).participantId);
    expect(new Set(ids)).toEqual(new Set(['p1', 'p2', 'p3']));
    for (const id of ['a', 'b', 'c']) {
      expect(world.context(`confirm:${id}`).participantId).toBe(world.context(`try:${id}`).participantId);
    }
    expect(world.context('body').participantId).toBeUndefined();
  });

  it('is independent per Tcc: another Tcc sees no transaction', async () => {
    const { tcc } = setup();
    const other = new Tcc({ domain: 'other', storage: new MemoryStorage() });
    await tcc.transaction(async () => {
      expect(tcc.current()?.domain).toBe(DOMAIN);
      expect(other.current()).toBeUndefined();
    });
  });
});
