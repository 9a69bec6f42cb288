import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 over a purpose and a payload with the shared secret. The purpose keeps a
 * signature of one kind of message (a context header) from being valid for another (a command).
 */
export class Signer {
  // Made once: every request signs or verifies, and the key needs no work per call.
  readonly #key: KeyObject;

  constructor(secret: string | Buffer) {
    this.#key = createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret);
  }

  sign(purpose: string, payload: string): string {
    return createHmac('sha256', this.#key).update(purpose).update('\n').update(payload).digest('base64url');
  }

  verify(purpose: string, payload: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(purpose, payload), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
