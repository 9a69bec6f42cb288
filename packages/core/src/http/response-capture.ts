import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { BranchReply } from '../branch/branches.js';

type Callback = (error?: Error | null) => void;

/**
 * Holds back what a handler writes to a response until the branch's try has been closed: the
 * caller must not learn "tried" (and send confirm) before TRIED is in the log, and a try that
 * turns out to have failed must not be answered with the handler's success.
 */
export class ResponseCapture {
  readonly ended: Promise<BranchReply>;
  readonly #res: ServerResponse;
  readonly #chunks: Buffer[] = [];
  readonly #original: Pick<ServerResponse, 'writeHead' | 'write' | 'end'>;
  #head: unknown[] | undefined;
  #endCallback: Callback | undefined;

  constructor(res: ServerResponse) {
    this.#res = res;
    this.#original = { writeHead: res.writeHead, write: res.write, end: res.end };
    let resolve!: (reply: BranchReply) => void;
    this.ended = new Promise((r) => (resolve = r));
    const chunks = this.#chunks;
    const self = this;
    res.writeHead = function writeHead(statusCode: number, ...rest: unknown[]) {
      res.statusCode = statusCode;
      self.#head = rest;
      return res;
    } as ServerResponse['writeHead'];
    res.write = function write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
      if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
      chunks.push(toBuffer(chunk, encoding));
      if (typeof callback === 'function') process.nextTick(callback as Callback);
      return true;
    } as ServerResponse['write'];
    res.end = function end(chunk?: unknown, encoding?: unknown, callback?: unknown) {
      if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
      if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
      if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk, encoding));
      if (typeof callback === 'function') self.#endCallback = callback as Callback;
      resolve({ status: res.statusCode, contentType: self.#contentType(), body: Buffer.concat(chunks) });
      return res;
    } as ServerResponse['end'];
  }

  /** Sends what the handler wrote. */
  flush(): void {
    this.#restore();
    const res = this.#res;
    if (this.#head !== undefined) this.#original.writeHead.call(res, res.statusCode, ...(this.#head as []));
    const body = Buffer.concat(this.#chunks);
    const end = this.#original.end as (this: ServerResponse, chunk: Buffer, callback?: Callback) => void;
    end.call(res, body, this.#endCallback);
  }

  /** Drops what the handler wrote and sends `status` with a JSON body instead. */
  replace(status: number, body: unknown): void {
    this.#restore();
    const res = this.#res;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    sendJson(res, status, body);
  }

  /** Drops what the handler wrote and sends `reply` (a stored answer) instead. */
  replaceWith(reply: BranchReply): void {
    this.#restore();
    const res = this.#res;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = reply.status;
    if (reply.contentType !== undefined) res.setHeader('content-type', reply.contentType);
    res.end(reply.body);
  }

  #restore(): void {
    Object.assign(this.#res, this.#original);
  }

  #contentType(): string | undefined {
    const fromHead = this.#head?.find((h): h is OutgoingHttpHeaders => typeof h === 'object' && h !== null);
    const value =
      (fromHead === undefined
        ? undefined
        : Object.entries(fromHead).find(([k]) => k.toLowerCase() === 'content-type')?.[1]) ??
      this.#res.getHeader('content-type');
    return value === undefined ? undefined : String(value);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
}
