import { TccError } from '@tcc/core/storage';

/**
 * A local transaction ended in ROLLBACK although its callback returned normally: a statement
 * inside it failed and the callback caught the error, which aborts the whole transaction in
 * PostgreSQL. Nothing of it was written (no fence row, no business change). Let such errors
 * propagate, or use a `SAVEPOINT` around a statement that is allowed to fail.
 */
export class RolledBackError extends TccError {
  constructor(options?: ErrorOptions) {
    super(
      'TCC_ROLLED_BACK',
      'the local transaction was rolled back instead of committed: a statement in it failed and ' +
        'its error was caught; nothing of it was written (let the error propagate, or use a SAVEPOINT)',
      options,
    );
  }
}

/**
 * The embedded database directory is held by another live process: PGlite lets one process at
 * a time open a directory, and a second opener would destroy the first one's data. Nothing was
 * opened or changed. Its `code` is `TCC_STORE_LOCKED`; `dataDir` and `holderPid` say which
 * directory and which process (`holderPid` is `undefined` when the holder has not written it yet
 * or runs on another machine).
 */
export class StoreLockedError extends TccError {
  readonly dataDir: string;
  readonly holderPid: number | undefined;

  constructor(dataDir: string, holderPid: number | undefined, holderHost?: string) {
    const who =
      holderPid === undefined
        ? 'another process'
        : `process ${holderPid}${holderHost === undefined ? '' : ` on ${holderHost}`}`;
    super(
      'TCC_STORE_LOCKED',
      `the embedded database ${dataDir} is in use by ${who}: PGlite lets one process at a time open ` +
        'a directory. Stop that process first, or keep the log on a PostgreSQL server (SqlStorage ' +
        'with a pg.Pool) where several processes can reach it',
    );
    this.dataDir = dataDir;
    this.holderPid = holderPid;
  }
}

/**
 * The database connection a local transaction (a `barrier` phase, a migration) ran on was lost:
 * terminated by the server (failover, `pg_terminate_backend`, an idle-session timeout) or the
 * network. The server rolls back a transaction whose connection dies, so nothing of it was
 * written, unless the connection died during `COMMIT`, when it may have committed. Either way
 * it is safe to run it again: a barrier phase that did commit finds its fence and is skipped.
 * The connection was discarded, not returned to the pool. Its `code` is `TCC_CONNECTION_LOST`,
 * the driver's error is `cause`.
 */
export class ConnectionLostError extends TccError {
  constructor(message: string, options?: ErrorOptions) {
    super(
      'TCC_CONNECTION_LOST',
      `${message}: nothing of the transaction was written, unless the connection was lost during ` +
        'COMMIT, when it may have committed; run it again (a barrier phase that committed is skipped)',
      options,
    );
  }
}
