/**
 * `@tcc/core/http`: remote branches over HTTP. The framework adapters and the client that
 * applications use, and the wire format (context header, signed `.tcc` commands) for those
 * who write an adapter or a transport of their own.
 *
 * @packageDocumentation
 */

// The input of `encodeContextHeader`: what a callee needs to open its branch.
export type { BranchOrigin } from '../transaction/active-transaction.js';
export {
  type ExpressMiddleware,
  type FastifyPlugin,
  type HasHttpHandler,
  tccExpress,
  tccFastify,
} from './adapters.js';
export * from './errors.js';
export {
  type HttpClientOptions,
  type TccFetchOptions,
  TccHttpClient,
  tccFetch,
} from './http-client.js';
export type { HttpHandlerOptions, NextFunction, TccHttpHandler } from './http-handler.js';
export type { HttpTransportOptions } from './options.js';
export { Signer } from './signing.js';
export {
  type BranchCommand,
  bodyDigest,
  COMMAND_PATH,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  decodeContextHeader,
  encodeContextHeader,
  MAX_BATCH_COMMANDS,
  type RequestBinding,
  SIGNATURE_HEADER,
  signCommand,
  signCommands,
} from './wire.js';
