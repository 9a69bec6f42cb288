import { TccError } from '@tcc/core';

/** The `tcc` config module is missing, fails to load, or does not export a `Tcc`. */
export class ConfigError extends TccError {
  constructor(message: string, options?: ErrorOptions) {
    super('TCC_CONFIG', message, options);
  }
}
