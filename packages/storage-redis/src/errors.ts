import { TccError } from '@tcc/core/storage';

/**
 * The key space was written by a newer (or unknown) version of `@tcc/storage-redis`, or with a
 * different layout: this version refuses to read or write it rather than misread it.
 */
export class SchemaVersionError extends TccError {
  readonly key: string;

  constructor(key: string, message: string) {
    super('TCC_SCHEMA_VERSION', message);
    this.key = key;
  }
}
