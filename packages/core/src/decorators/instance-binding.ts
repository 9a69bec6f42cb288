/**
 * Decorated methods find their `Tcc` through the instance they are called on, so one class can
 * be used by several `Tcc` instances (one per domain) as long as each object is registered once.
 */
export type InstanceInvoker = (method: Function, args: unknown[]) => Promise<unknown>;

const bindings = new WeakMap<object, InstanceInvoker>();

export function bindInstance(instance: object, invoker: InstanceInvoker): boolean {
  if (bindings.has(instance)) return false;
  bindings.set(instance, invoker);
  return true;
}

export function invokerOf(instance: object): InstanceInvoker | undefined {
  return bindings.get(instance);
}
