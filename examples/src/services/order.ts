import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ConfirmFailedError, Tcc } from '@tcc/core';
import { dataDir, secret, urlOf } from './config.js';
import { openDatabase } from './database.js';
import { id, listen, positiveInt, readJson, sendError, sendJson, sendStats } from './http.js';

/**
 * The order service: the root. `POST /orders` pays an order with cash (capital) and a red
 * packet in one TCC transaction over HTTP; `POST /orders-plain` makes the same payments
 * without TCC (the benchmark's baseline); `GET /state` lists unfinished transactions;
 * `GET /stats`: SQL statements sent and CPU time used so far (for the benchmark).
 */
export async function startOrder(url: string): Promise<{ server: Server; tcc: Tcc }> {
  const { storage } = await openDatabase(dataDir('order'));
  const tcc = new Tcc({
    domain: 'order',
    storage,
    // The try deadline; the benchmark's smoke run raises it, as a loaded machine can take longer.
    timeoutMs: Number(process.env.SHOP_TIMEOUT_MS ?? 10_000),
    // Where the wallets ask for the outcome of a hold whose confirm or cancel never came.
    http: { secret: secret(), url },
    // recoverAfterMs is also the claim of the process driving a confirm: at 1 s a loaded
    // machine's slow first confirm (no renewal before it) let the poller take the record over
    // mid-confirm, and the order answered 202 although nothing had failed.
    recovery: { recoverAfterMs: 5_000, intervalMs: 500 },
  });
  // Each named: a signed try and its commands are for that service only.
  const capital = tcc.http(urlOf('capital'), { domain: 'capital' });
  const redPacket = tcc.http(urlOf('red-packet'), { domain: 'red-packet' });
  tcc.startRecovery({
    // Said on stderr, so a run that does not finish shows what recovery did meanwhile.
    onResult: (r) => r.outcome !== 'waiting' && console.error(`[order] recovery: ${r.xid} ${r.outcome}`),
    onError: (error) => console.error('[order] recovery pass failed:', error),
  });
  // Serves `.tcc` for the wallets' questions; everything else is the order API below.
  const tccHandler = tcc.httpHandler();
  const server = createServer((req, res) => tccHandler(req, res, () => void route(req, res)));
  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method === 'POST' && (req.url === '/orders' || req.url === '/orders-plain')) {
        const body = await readJson(req);
        const orderId = id(body.orderId, 'orderId');
        const userId = id(body.userId, 'userId');
        const cash = positiveInt(body.cash, 'cash');
        const packet = positiveInt(body.redPacket ?? 0, 'redPacket');
        const delay = typeof body.delayMs === 'number' ? { delayMs: body.delayMs } : {};
        // The two payments are independent: both wallets are called at once.
        if (req.url === '/orders-plain') {
          await Promise.all([
            capital.post('/pay', { orderId, userId, amount: cash }),
            packet > 0 ? redPacket.post('/pay', { orderId, userId, amount: packet }) : undefined,
          ]);
          return sendJson(res, 200, { orderId, status: 'PAID' });
        }
        try {
          // Both tries at once: the SDK writes the two remote participants in one write.
          await tcc.transaction(async () => {
            await Promise.all([
              capital.post('/hold', { orderId, userId, amount: cash }),
              packet > 0 ? redPacket.post('/hold', { orderId, userId, amount: packet, ...delay }) : undefined,
            ]);
          });
          return sendJson(res, 200, { orderId, status: 'CONFIRMED' });
        } catch (error) {
          if (error instanceof ConfirmFailedError) {
            // Committed: recovery finishes the confirms that failed.
            return sendJson(res, 202, {
              orderId,
              status: 'CONFIRMING',
              globalId: error.globalId,
              error: error.message,
            });
          }
          const e = error as { status?: number; code?: string; message?: string; remoteCode?: string };
          return sendJson(res, e.status === 409 ? 409 : 502, {
            orderId,
            status: 'CANCELLED',
            error: { code: e.remoteCode ?? e.code, message: e.message },
          });
        }
      }
      if (req.method === 'GET' && req.url === '/stats') {
        return sendStats(res);
      }
      if (req.method === 'GET' && req.url === '/state') {
        const list = await storage.list({ domain: 'order', limit: 1000 });
        return sendJson(res, 200, {
          records: list.records.map((r) => ({
            xid: r.xid,
            status: r.status,
            retries: r.retries,
            updatedAt: r.updatedAt,
            lastError: r.lastError,
          })),
          recordCount: list.records.length,
        });
      }
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `${req.method} ${req.url}` } });
    } catch (error) {
      sendError(res, error);
    }
  }
  await listen(server, url);
  return { server, tcc };
}
