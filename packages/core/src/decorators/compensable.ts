import { InvalidOptionError } from '../base/errors.js';
import { NotRegisteredError } from '../participants/errors.js';
import { resolveTransactionOptions } from '../participants/transaction-options.js';
import { invokerOf } from './instance-binding.js';
import { type CompensableOptions, defineCompensable } from './metadata.js';

// biome-ignore lint/suspicious/noExplicitAny: a try may take any parameters
type TryMethod = (...args: any[]) => Promise<unknown>;

/**
 * The decorator `@Compensable` returns. Both signatures are declared so that it type-checks
 * under standard decorators (TS 5+) and under `experimentalDecorators` (as NestJS uses).
 */
export interface CompensableDecorator {
  <T extends TryMethod>(value: T, context: ClassMethodDecoratorContext): T;
  <T extends TryMethod>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): void;
}

/**
 * Marks an async method as the try of a TCC participant. Its confirm and cancel methods (named
 * in the options, on the same class) receive the try's arguments. The object must be
 * registered with `tcc.register(instance)` before the method is called.
 *
 * @example
 * class CapitalService {
 *   @Compensable({ confirmMethod: 'confirmRecord', cancelMethod: 'cancelRecord' })
 *   async record(req: TransferRequest) { ... }
 * }
 */
export function Compensable(options: CompensableOptions): CompensableDecorator {
  const checked = checkOptions(options);
  return ((...args: unknown[]) => {
    const [value, second, descriptor] = args;
    if (isMethodContext(second)) {
      if (typeof second.name !== 'string' || second.static || second.private) {
        throw new InvalidOptionError(
          `@Compensable goes on an instance method, not on ${String(second.name)}`,
        );
      }
      return wrap(value as TryMethod, second.name, checked);
    }
    const desc = descriptor as PropertyDescriptor | undefined;
    // Legacy decorators get the constructor itself as target for a static method.
    if (typeof value === 'function' || typeof second !== 'string' || typeof desc?.value !== 'function') {
      throw new InvalidOptionError(`@Compensable goes on an instance method, not on ${String(second)}`);
    }
    desc.value = wrap(desc.value as TryMethod, second, checked);
  }) as CompensableDecorator;
}

function isMethodContext(value: unknown): value is ClassMethodDecoratorContext {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'method';
}

function checkOptions(options: CompensableOptions): CompensableOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('@Compensable needs an options object with confirmMethod and cancelMethod');
  }
  for (const key of ['confirmMethod', 'cancelMethod'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') {
      throw new InvalidOptionError(`@Compensable: ${key} must name a method, got ${String(options[key])}`);
    }
  }
  resolveTransactionOptions(options, '@Compensable');
  return options;
}

function wrap(original: TryMethod, methodName: string, options: CompensableOptions): TryMethod {
  // A named function expression keeps stack traces and `fn.name` readable.
  const compensable = {
    [methodName](this: object, ...args: unknown[]): Promise<unknown> {
      const invoke = invokerOf(this);
      if (invoke === undefined) {
        return Promise.reject(
          new NotRegisteredError(
            `${this?.constructor?.name ?? 'object'}.${methodName} is @Compensable but its instance is not` +
              ' registered: call tcc.register(instance) first',
          ),
        );
      }
      return invoke(compensable, args);
    },
  }[methodName] as TryMethod;
  defineCompensable(compensable, { options, methodName, original });
  return compensable;
}
