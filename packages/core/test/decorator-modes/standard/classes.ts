/**
 * Decorated classes for ../shared/decorator-suite.ts. legacy/classes.ts and
 * standard/classes.ts are the same source (a test checks it): vitest's esbuild compiles each
 * with the tsconfig.json nearest to it, so one becomes legacy decorators
 * (experimentalDecorators) and the other standard decorators.
 */
import { Compensable, type CompensableOptions, Participant } from '@tcc/core';

/** The arguments each call of `probe` received, to tell which decorator mode compiled this file. */
export const probeCalls: unknown[][] = [];
function probe(...args: unknown[]): void {
  probeCalls.push(args);
}

export class Probe {
  @probe
  method(): void {}
}

export interface Transfer {
  id: string;
  amount: number;
}

@Participant('capital')
export class Capital {
  readonly log: string[] = [];
  balance = 100;
  frozen = 0;
  spent = 0;
  /** Amount frozen by each try, so that a cancel releases only what its try froze. */
  readonly holds = new Map<string, number>();

  @Compensable({ confirmMethod: 'confirmDebit', cancelMethod: 'cancelDebit' })
  async debit(t: Transfer): Promise<number> {
    this.log.push(`try:${t.id}`);
    if (t.amount > this.balance) throw new RangeError(`balance ${this.balance} < ${t.amount}`);
    this.balance -= t.amount;
    this.frozen += t.amount;
    this.holds.set(t.id, t.amount);
    return this.balance;
  }

  async confirmDebit(t: Transfer): Promise<void> {
    this.log.push(`confirm:${t.id}`);
    const held = this.holds.get(t.id) ?? 0;
    this.holds.delete(t.id);
    this.frozen -= held;
    this.spent += held;
  }

  async cancelDebit(t: Transfer): Promise<void> {
    this.log.push(`cancel:${t.id}`);
    const held = this.holds.get(t.id) ?? 0;
    this.holds.delete(t.id);
    this.frozen -= held;
    this.balance += held;
  }

  @Compensable({ confirmMethod: 'confirmNote', cancelMethod: 'cancelNote', propagation: 'MANDATORY' })
  async note(text: string): Promise<void> {
    this.log.push(`try:note:${text}`);
  }

  async confirmNote(text: string): Promise<void> {
    this.log.push(`confirm:note:${text}`);
  }

  async cancelNote(text: string): Promise<void> {
    this.log.push(`cancel:note:${text}`);
  }
}

/** No `@Participant`: named after the class. */
export class Unnamed {
  readonly log: string[] = [];

  @Compensable({ confirmMethod: 'confirmStep', cancelMethod: 'cancelStep' })
  async step(n: number): Promise<void> {
    this.log.push(`try:${n}`);
  }

  async confirmStep(n: number): Promise<void> {
    this.log.push(`confirm:${n}`);
  }

  async cancelStep(n: number): Promise<void> {
    this.log.push(`cancel:${n}`);
  }
}

export class Misspelt {
  @Compensable({ confirmMethod: 'confirmPayy', cancelMethod: 'cancelPay' })
  async pay(): Promise<void> {}

  async confirmPay(): Promise<void> {}
  async cancelPay(): Promise<void> {}
}

export class CompensableConfirm {
  @Compensable({ confirmMethod: 'confirmPay', cancelMethod: 'cancelPay' })
  async pay(): Promise<void> {}

  @Compensable({ confirmMethod: 'pay', cancelMethod: 'cancelPay' })
  async confirmPay(): Promise<void> {}

  async cancelPay(): Promise<void> {}
}

export class Bare {
  async pay(): Promise<void> {}
  async confirmPay(): Promise<void> {}
}

export class Base {
  readonly log: string[] = [];

  @Compensable({ confirmMethod: 'confirmPay', cancelMethod: 'cancelPay' })
  async pay(id: string): Promise<string> {
    this.log.push(`base.try:${id}`);
    return 'base';
  }

  async confirmPay(id: string): Promise<void> {
    this.log.push(`base.confirm:${id}`);
  }

  async cancelPay(id: string): Promise<void> {
    this.log.push(`base.cancel:${id}`);
  }
}

/** Overrides the compensable method with its own try, confirm and cancel. */
export class Override extends Base {
  @Compensable({ confirmMethod: 'confirmOverride', cancelMethod: 'cancelOverride' })
  override async pay(id: string): Promise<string> {
    this.log.push(`override.try:${id}`);
    return 'override';
  }

  async confirmOverride(id: string): Promise<void> {
    this.log.push(`override.confirm:${id}`);
  }

  async cancelOverride(id: string): Promise<void> {
    this.log.push(`override.cancel:${id}`);
  }
}

/** Inherits the compensable method as it is. */
export class Inherit extends Base {}

/** Overrides only the confirm method: the inherited try is confirmed by the override. */
export class OverrideConfirm extends Base {
  override async confirmPay(id: string): Promise<void> {
    this.log.push(`sub.confirm:${id}`);
  }
}

/** Overrides the compensable method and calls the parent's from its own try. */
export class OverrideCallingSuper extends Base {
  depth = 0;

  @Compensable({ confirmMethod: 'confirmOverride', cancelMethod: 'cancelOverride' })
  override async pay(id: string): Promise<string> {
    this.log.push(`override.try:${id}`);
    // Guard: a wrapper that dispatches super.pay back to this override would recurse forever.
    if (++this.depth > 3) throw new Error('super.pay() re-entered the override');
    return `override+${await super.pay(id)}`;
  }

  async confirmOverride(id: string): Promise<void> {
    this.log.push(`override.confirm:${id}`);
  }

  async cancelOverride(id: string): Promise<void> {
    this.log.push(`override.cancel:${id}`);
  }
}

/** Defines (and returns) a class whose method is decorated with `@Compensable(options)`. */
export function defineCompensable(options: CompensableOptions): unknown {
  class Defined {
    @Compensable(options)
    async run(): Promise<void> {}
    async confirm(): Promise<void> {}
    async cancel(): Promise<void> {}
  }
  return Defined;
}

/** Defines (and returns) a class decorated with `@Participant(name)`. */
export function defineParticipant(name: string): unknown {
  @Participant(name)
  class Defined {
    @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel' })
    async run(): Promise<void> {}
    async confirm(): Promise<void> {}
    async cancel(): Promise<void> {}
  }
  return Defined;
}

/** Defines a class with `@Compensable` on a static method. */
export function defineStaticCompensable(): unknown {
  class Defined {
    @Compensable({ confirmMethod: 'confirm', cancelMethod: 'cancel' })
    static async run(): Promise<void> {}
    static async confirm(): Promise<void> {}
    static async cancel(): Promise<void> {}
    async instance(): Promise<void> {}
  }
  return Defined;
}
