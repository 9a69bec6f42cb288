import { AsyncLocalStorage } from 'node:async_hooks';
import {
  describeValue,
  requireNonNegativeInteger,
  requireObject,
  requirePositiveInteger,
} from './base/checks.js';
import { type Clock, systemClock } from './base/clock.js';
import { InvalidOptionError } from './base/errors.js';
import { BranchKeeper } from './branch/branches.js';
import { type Codec, JsonCodec } from './codec/codec.js';
import type { TransactionContext } from './context/transaction-context.js';
import { collectActions } from './decorators/collect-actions.js';
import { bindInstance, invokerOf } from './decorators/instance-binding.js';
import { compensableOf, participantNameOf } from './decorators/metadata.js';
import { type HttpClientOptions, TccHttpClient } from './http/http-client.js';
import { createHttpHandler, type HttpHandlerOptions, type TccHttpHandler } from './http/http-handler.js';
import {
  type HttpTransportOptions,
  type ResolvedHttpTransportOptions,
  resolveHttpTransportOptions,
} from './http/options.js';
import { parentAsker } from './http/parent-query.js';
import { HttpRemoteInvoker } from './http/remote-invoker.js';
import { Signer } from './http/signing.js';
import type { AnyFunction, CompensableAction } from './participants/compensable-action.js';
import { DuplicateParticipantError, InvalidParticipantError } from './participants/errors.js';
import { checkName } from './participants/names.js';
import { ParticipantRegistry } from './participants/registry.js';
import type { CompensableSpec, RegisterOptions } from './participants/specs.js';
import {
  resolveRootOptions,
  resolveTransactionOptions,
  type TccTransactionOptions,
} from './participants/transaction-options.js';
import { type RecoveryOptions, resolveRecovery, type StartRecoveryOptions } from './recovery/options.js';
import { RecoveryPoller } from './recovery/poller.js';
import { Recoverer, type RecoverOptions, type RecoveryResult } from './recovery/recoverer.js';
import { RECOVER_SCANNED, type RecoverScanned } from './recovery/scanned.js';
import type { TransactionStorage } from './storage/transaction-storage.js';
import { Telemetry } from './telemetry/telemetry.js';
import { Claims } from './transaction/claims.js';
import { OutcomeReporter } from './transaction/outcome-reporter.js';
import { PhaseDriver } from './transaction/phase-driver.js';
import { RecordLog } from './transaction/record-log.js';
import type { Scope } from './transaction/scope.js';
import { TransactionManager } from './transaction/transaction-manager.js';

export interface TccOptions {
  /** Name of this service; records are owned and recovered per domain. */
  domain: string;
  /** The transaction log. */
  storage: TransactionStorage;
  /** Encodes try arguments into records. Default: `new JsonCodec()`. */
  codec?: Codec;
  clock?: Clock;
  /** Default try deadline of roots begun here, in ms. Default 60,000. */
  timeoutMs?: number;
  /** Keep finished roots as CONFIRMED/CANCELLED tombstones this long (ms). Default 0: delete. */
  retainMs?: number;
  recovery?: RecoveryOptions;
  /** The HTTP transport of remote branches (`tcc.http`, `tcc.httpHandler`): secret and limits. */
  http?: HttpTransportOptions;
}

const DOMAIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/**
 * The TCC runtime of one service (domain): registers participants, runs transactions and
 * recovers the ones a failure left unfinished.
 *
 * @example
 * const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage() });
 * tcc.register(new CapitalService());
 * await tcc.transaction(async () => { await capital.record(req); await packets.use(req); });
 */
export class Tcc {
  readonly domain: string;
  readonly storage: TransactionStorage;
  readonly #registry = new ParticipantRegistry();
  readonly #als = new AsyncLocalStorage<Scope>();
  readonly #manager: TransactionManager;
  readonly #recoverer: Recoverer;
  readonly #recovery: Required<RecoveryOptions>;
  readonly #clock: Clock;
  readonly #remote: HttpRemoteInvoker;
  readonly #claims: Claims;
  #poller: RecoveryPoller | undefined;
  readonly #telemetry: Telemetry;
  readonly #keeper: BranchKeeper;
  readonly #reporter: OutcomeReporter;
  readonly #http: ResolvedHttpTransportOptions;
  readonly #signer: Signer | undefined;

  constructor(options: TccOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError(
        `new Tcc(options): options must be an object, got ${describeValue(options)}`,
      );
    }
    const { domain, storage, codec = new JsonCodec(), clock = systemClock } = options;
    if (typeof domain !== 'string' || !DOMAIN.test(domain)) {
      throw new InvalidOptionError(
        `new Tcc: domain must be 1-64 characters of letters, digits, _ . - (not starting with . or -), got ${describeValue(domain)}`,
      );
    }
    requireMethods(storage, 'storage', [
      'create',
      'update',
      'complete',
      'remove',
      'get',
      'findStuck',
      'list',
      'count',
    ]);
    requireMethods(codec, 'codec', ['encode', 'decode']);
    requireMethods(clock, 'clock', ['now']);
    const timeoutMs = requirePositiveInteger(options.timeoutMs ?? 60_000, 'new Tcc: timeoutMs');
    const retainMs = requireNonNegativeInteger(options.retainMs ?? 0, 'new Tcc: retainMs');
    this.#recovery = Object.freeze(resolveRecovery(options.recovery, 'new Tcc: recovery'));
    this.#http = resolveHttpTransportOptions(options.http, 'new Tcc: http');

    this.domain = domain;
    this.storage = storage;
    this.#clock = clock;
    const telemetry = new Telemetry(domain);
    this.#telemetry = telemetry;
    const tombstoneMs = Math.max(retainMs, 24 * 3600_000);
    const leaseMs = this.#recovery.recoverAfterMs;
    const log = new RecordLog(storage, clock, retainMs, tombstoneMs, leaseMs);
    const claims = new Claims(log, clock, leaseMs);
    this.#claims = claims;
    this.#signer = this.#http.secret === undefined ? undefined : new Signer(this.#http.secret);
    this.#remote = new HttpRemoteInvoker(
      clock,
      this.#signer,
      this.#http.commandTimeoutMs,
      this.#http.maxBodyBytes,
    );
    const driver = new PhaseDriver(this.#registry, codec, this.#als, this.#remote);
    this.#manager = new TransactionManager({
      domain,
      codec,
      clock,
      log,
      driver,
      telemetry,
      als: this.#als,
      timeoutMs,
      claims,
      idKeepMs: tombstoneMs,
      url: this.#http.url,
    });
    this.#recoverer = new Recoverer({
      domain,
      storage,
      log,
      manager: this.#manager,
      claims,
      clock,
      telemetry,
      maxRetries: this.#recovery.maxRetries,
      graceMs: leaseMs,
      askParent: parentAsker(this.#remote, this.#http.peers),
    });
    this.#keeper = new BranchKeeper({
      domain,
      clock,
      log,
      manager: this.#manager,
      claims,
      telemetry,
      tombstoneMs,
    });
    this.#reporter = new OutcomeReporter(domain, storage, clock, (xid) => this.#recoverer.recover(xid));
    // Hidden (not enumerable, not in the type): the scan hand-over of `@tcc/recovery`'s worker.
    const recoverScanned: RecoverScanned = (xid, record) => {
      if (record === null || typeof record !== 'object' || record.xid !== xid) {
        return Promise.reject(
          new InvalidOptionError(
            `tcc.recover: the scanned record must be the record of ${xid}, got ${describeValue(record === null || typeof record !== 'object' ? record : record.xid)}`,
          ),
        );
      }
      return this.#recoverer.recover(xid, { scanned: record });
    };
    Object.defineProperty(this, RECOVER_SCANNED, { value: recoverScanned });
  }

  /**
   * An HTTP client for the service at `baseUrl` (which serves its TCC endpoint at
   * `<baseUrl>/.tcc`). Inside a transaction every request enlists that service as a remote
   * participant and carries the `tcc-context` header; outside one it is a plain client.
   *
   * @example
   * const capital = tcc.http('http://127.0.0.1:4001');
   * await tcc.transaction(() => capital.post('/freeze', { orderId, userId, amount }));
   */
  http(baseUrl: string, options: HttpClientOptions = {}): TccHttpClient {
    requireObject(options, 'tcc.http(baseUrl, options)');
    return new TccHttpClient(
      { manager: this.#manager, clock: this.#clock, signer: this.#signer },
      baseUrl,
      options,
    );
  }

  /**
   * Middleware for node:http: serves `POST <base>/.tcc` (confirm and cancel from the root) and
   * runs every request carrying a `tcc-context` header as the try of a branch, in which
   * `@Compensable` methods join. `tccExpress` and `tccFastify` adapt it.
   *
   * @example
   * const tccHandler = tcc.httpHandler();
   * http.createServer((req, res) => tccHandler(req, res, () => routes(req, res)));
   */
  httpHandler(options: HttpHandlerOptions = {}): TccHttpHandler {
    requireObject(options, 'tcc.httpHandler(options)');
    if (options.base !== undefined && (typeof options.base !== 'string' || !options.base.startsWith('/'))) {
      throw new InvalidOptionError(
        `tcc.httpHandler: base must be a path starting with /, got ${describeValue(options.base)}`,
      );
    }
    return createHttpHandler(
      {
        domain: this.domain,
        manager: this.#manager,
        keeper: this.#keeper,
        reporter: this.#reporter,
        telemetry: this.#telemetry,
        clock: this.#clock,
        signer: this.#signer,
        options: this.#http,
      },
      options,
    );
  }

  /**
   * Registers an object whose class has `@Compensable` methods. Its participant name is
   * `options.name`, else `@Participant(name)`, else the class name. Confirm and cancel
   * methods are checked here, so a misspelt name fails at start-up, not at confirm time.
   */
  register<T extends object>(instance: T, options: RegisterOptions = {}): T {
    if (instance === null || typeof instance !== 'object') {
      throw new InvalidParticipantError(`tcc.register: expected an object, got ${describeValue(instance)}`);
    }
    requireObject(options, 'tcc.register(instance, options)');
    const ctor: unknown = (instance as { constructor?: unknown }).constructor;
    const className = (typeof ctor === 'function' && ctor.name) || 'object';
    const name = checkName(
      options.name ?? (typeof ctor === 'function' ? participantNameOf(ctor) : undefined) ?? className,
      `tcc.register(${className})`,
    );
    if (invokerOf(instance) !== undefined) {
      throw new DuplicateParticipantError(
        name,
        `(${className} instance) is already registered; register each object once`,
      );
    }
    const byMethod = collectActions(instance, className, name);
    this.#registry.add(name, [...byMethod.values()]);
    bindInstance(instance, (method, args) => {
      const action = byMethod.get(method);
      if (action !== undefined) return this.#manager.call(action, args);
      // An overridden compensable method reached through `super`: its body is part of the
      // overriding try, not a participant of its own.
      return Promise.resolve(compensableOf(method)!.original.apply(instance, args));
    });
    return instance;
  }

  /**
   * A compensable function without classes or decorators: calling it runs `try` as a
   * participant (joining or beginning a transaction like a `@Compensable` method), and the
   * transaction later calls `confirm` or `cancel` with the same arguments.
   */
  compensable<A extends unknown[], R>(name: string, spec: CompensableSpec<A, R>): (...args: A) => Promise<R> {
    checkName(name, 'tcc.compensable');
    if (spec === null || typeof spec !== 'object') {
      throw new InvalidParticipantError(
        `tcc.compensable(${name}): expected { try, confirm, cancel }, got ${describeValue(spec)}`,
      );
    }
    for (const key of ['try', 'confirm', 'cancel'] as const) {
      if (typeof spec[key] !== 'function') {
        throw new InvalidParticipantError(
          `tcc.compensable(${name}): ${key} must be a function, got ${describeValue(spec[key])}`,
        );
      }
    }
    const action: CompensableAction = {
      name,
      try: spec.try as AnyFunction,
      confirm: spec.confirm as AnyFunction,
      cancel: spec.cancel as AnyFunction,
      confirmName: 'confirm',
      cancelName: 'cancel',
      options: resolveTransactionOptions(spec, `tcc.compensable(${name})`),
    };
    this.#registry.add(name, [action]);
    return (...args: A) => this.#manager.call(action, args) as Promise<R>;
  }

  /**
   * Runs `body` as the try phase of a root: compensable calls inside it enlist, and when it
   * returns every participant is confirmed (or, if it throws, cancelled and the error rethrown).
   */
  transaction<R>(body: () => Promise<R> | R, options?: TccTransactionOptions): Promise<R> {
    try {
      return this.#manager.transaction(body, resolveRootOptions(options, 'tcc.transaction'));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The transaction in scope, or `undefined` outside one. */
  current(): TransactionContext | undefined {
    return this.#manager.current();
  }

  /** Runs the next recovery step of one record (see `RecoveryOutcome`). */
  recover(xid: string, options?: RecoverOptions): Promise<RecoveryResult> {
    if (typeof xid !== 'string' || xid === '') {
      return Promise.reject(
        new InvalidOptionError(`tcc.recover: xid must be a non-empty string, got ${describeValue(xid)}`),
      );
    }
    // Only what the public options say: the scan hand-over has its own, hidden way in.
    return this.#recoverer.recover(xid, { force: options?.force === true });
  }

  /** The recovery tuning this instance runs with, defaults filled in (`new Tcc({ recovery })`). */
  get recoveryOptions(): Readonly<Required<RecoveryOptions>> {
    return this.#recovery;
  }

  /** Starts the in-process recovery poller (the embedded default; `@tcc/recovery` scales out). */
  startRecovery(options: StartRecoveryOptions = {}): void {
    if (this.#poller !== undefined) {
      throw new InvalidOptionError('tcc.startRecovery: recovery is already running; call tcc.stop() first');
    }
    requireObject(options, 'tcc.startRecovery(options)');
    const { onResult, onError, ...tuning } = options;
    for (const [name, fn] of [
      ['onResult', onResult],
      ['onError', onError],
    ] as const) {
      if (fn !== undefined && typeof fn !== 'function') {
        throw new InvalidOptionError(
          `tcc.startRecovery: ${name} must be a function, got ${describeValue(fn)}`,
        );
      }
    }
    const unknown = Object.keys(tuning).filter(
      (key) => key !== 'intervalMs' && key !== 'batchSize' && key !== 'concurrency',
    );
    if (unknown.length > 0) {
      throw new InvalidOptionError(
        `tcc.startRecovery: unknown option ${unknown.join(', ')}` +
          (unknown.includes('recoverAfterMs') ? ' (set recovery.recoverAfterMs on new Tcc)' : ''),
      );
    }
    const { intervalMs, batchSize, concurrency } = resolveRecovery(
      { ...this.#recovery, ...tuning },
      'tcc.startRecovery',
    );
    this.#poller = new RecoveryPoller({
      domain: this.domain,
      storage: this.storage,
      clock: this.#clock,
      recover: (xid) => this.#recoverer.recover(xid),
      intervalMs,
      batchSize,
      concurrency,
      onResult,
      onError: onError ?? ((error) => console.error('[tcc] recovery pass failed:', error)),
    });
    this.#poller.start();
  }

  /** Stops the poller and waits for confirms and cancels running in the background. */
  async stop(): Promise<void> {
    const poller = this.#poller;
    this.#poller = undefined;
    await poller?.stop();
    await this.#manager.drain();
    this.#claims.stop();
  }
}

function requireMethods(value: unknown, name: string, methods: readonly string[]): void {
  const missing = methods.filter((m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function');
  if (missing.length > 0) {
    throw new InvalidOptionError(
      `new Tcc: ${name} must implement ${missing.join(', ')}; got ${describeValue(value)}`,
    );
  }
}
