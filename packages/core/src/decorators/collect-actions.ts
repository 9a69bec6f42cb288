import type { AnyFunction, CompensableAction } from '../participants/compensable-action.js';
import { InvalidParticipantError } from '../participants/errors.js';
import { resolveTransactionOptions } from '../participants/transaction-options.js';
import { compensableOf } from './metadata.js';

/** The compensable methods of an instance, by their decorated function. */
export function collectActions(
  instance: object,
  className: string,
  participant: string,
): Map<Function, CompensableAction> {
  const actions = new Map<Function, CompensableAction>();
  const seen = new Set<string>();
  const target = instance as Record<string, unknown>;
  for (
    let proto = Object.getPrototypeOf(instance);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const method: unknown = Object.getOwnPropertyDescriptor(proto, key)?.value;
      const meta = compensableOf(method);
      // A subclass's override wins over the method it overrides.
      if (meta === undefined || seen.has(key)) continue;
      seen.add(key);
      const { confirmMethod, cancelMethod } = meta.options;
      for (const [role, method] of [
        ['confirmMethod', confirmMethod],
        ['cancelMethod', cancelMethod],
      ] as const) {
        if (typeof target[method] !== 'function') {
          throw new InvalidParticipantError(
            `${className}.${key}: ${role} ${JSON.stringify(method)} is not a method of ${className}`,
          );
        }
        if (compensableOf(target[method]) !== undefined) {
          throw new InvalidParticipantError(
            `${className}.${key}: ${role} ${JSON.stringify(method)} is itself @Compensable`,
          );
        }
      }
      actions.set(method as Function, {
        name: `${participant}.${key}`,
        try: meta.original.bind(instance),
        confirm: (target[confirmMethod] as AnyFunction).bind(instance),
        cancel: (target[cancelMethod] as AnyFunction).bind(instance),
        confirmName: confirmMethod,
        cancelName: cancelMethod,
        options: resolveTransactionOptions(meta.options, `${className}.${key}`),
      });
    }
  }
  if (actions.size === 0) {
    throw new InvalidParticipantError(`tcc.register: ${className} has no @Compensable method`);
  }
  return actions;
}
