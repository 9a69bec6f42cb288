import { TccError } from '@tcc/core';

/**
 * The `tcc` config module is missing, fails to load, or does not export a `Tcc` (or the queue
 * connection the worker needs). Not an `InvalidOptionError`: nothing the caller typed was wrong,
 * the deployment's module is, and the command line says so apart (exit 3, `TCC_CONFIG`), so an
 * operator looks at the file rather than at the command.
 */
export class ConfigError extends TccError {
  constructor(message: string, options?: ErrorOptions) {
    super('TCC_CONFIG', message, options);
  }
}
