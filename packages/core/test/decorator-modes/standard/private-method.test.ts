// Compiled by vitest's esbuild with ./tsconfig.json: standard decorators (no experimentalDecorators).
import { Compensable, MemoryStorage, Tcc } from '@tcc/core';
import { expect, it } from 'vitest';

// Only standard decorators can decorate an ECMAScript private method; it is never registered
// (register() sees only the prototype's named methods), so it must be refused up front.
function definePrivateCompensable() {
  class Secretive {
    readonly log: string[] = [];

    @Compensable({ confirmMethod: 'confirmPay', cancelMethod: 'cancelPay' })
    async pay(): Promise<void> {
      this.log.push('try:pay');
      await this.#hidden();
    }

    // Not @ts-expect-error: this decorator is an error only when packages/core/test/tsconfig.json
    // type-checks this file with experimentalDecorators, not under ./tsconfig.json.
    // biome-ignore lint/suspicious/noTsIgnore: the error exists in one of the two configurations only
    // @ts-ignore
    @Compensable({ confirmMethod: 'confirmPay', cancelMethod: 'cancelPay' })
    async #hidden(): Promise<void> {
      this.log.push('try:hidden');
    }

    async confirmPay(): Promise<void> {}
    async cancelPay(): Promise<void> {}
  }
  return Secretive;
}

it('refuses @Compensable on a private method when the class is defined (standard decorators)', async () => {
  let error: unknown;
  let Secretive: ReturnType<typeof definePrivateCompensable> | undefined;
  try {
    Secretive = definePrivateCompensable();
  } catch (e) {
    error = e;
  }
  if (Secretive !== undefined) {
    // Not refused at definition: show what a caller gets instead.
    const tcc = new Tcc({ domain: 'shop', storage: new MemoryStorage() });
    const secretive = tcc.register(new Secretive());
    const outcome = await secretive.pay().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect.fail(
      `@Compensable on #hidden was accepted; calling it gave ${String(outcome)} (log ${secretive.log})`,
    );
  }
  expect(error).toMatchObject({ code: 'TCC_INVALID_OPTION' });
  expect((error as Error).message).toContain('#hidden');
});
