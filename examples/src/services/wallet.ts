import { createServer, type Server } from 'node:http';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import { Tcc } from '@tcc/core';
import { dataDir, secret, TEST_HOOKS } from './config.js';
import { openDatabase } from './database.js';
import { HttpError, id, positiveInt, readJson, sendError, sendJson } from './http.js';

export interface Hold {
  orderId: string;
  userId: string;
  amount: number;
  delayMs?: number;
}

const SHOP = 'shop';

/**
 * A wallet service (capital: cash; red-packet: vouchers) with its books in its own PGlite:
 * - `POST /hold` (a branch, MANDATORY): the try freezes `amount` of `userId` for `orderId`;
 *   confirm pays it to the shop, cancel gives it back;
 * - `POST /pay`: the same payment without TCC, in one local transaction (the benchmark's
 *   baseline);
 * - `GET /state`: balances, and the transaction records not yet finished.
 * Each hold row is the fence of its order: confirm and cancel act only on a `held` row, and a
 * cancel that finds no row writes a `released` one, so a try arriving after it does nothing.
 */
export async function startWallet(
  name: 'capital' | 'red-packet',
  url: string,
  opening: Record<string, number>,
): Promise<{ server: Server; tcc: Tcc }> {
  const { db, storage } = await openDatabase(dataDir(name));
  await migrate(db, opening);
  const tcc = new Tcc({
    domain: name,
    storage,
    http: { secret: secret() },
    recovery: { recoverAfterMs: 2_000, intervalMs: 1_000 },
  });
  const hold = tcc.compensable(`${name}.hold`, {
    propagation: 'MANDATORY',
    try: async (h: Hold) => {
      if (TEST_HOOKS && h.delayMs) await new Promise((r) => setTimeout(r, h.delayMs));
      await db.transaction((tx) => freeze(tx, h));
    },
    confirm: (h: Hold) => db.transaction((tx) => settle(tx, h, 'spent')),
    cancel: (h: Hold) => db.transaction((tx) => settle(tx, h, 'released')),
  });
  tcc.startRecovery();
  const tccHandler = tcc.httpHandler();
  const server = createServer((req, res) =>
    tccHandler(req, res, async () => {
      try {
        if (req.method === 'POST' && req.url === '/hold') {
          const h = readHold(await readJson(req));
          await hold(h);
          return sendJson(res, 200, { held: h.amount });
        }
        if (req.method === 'POST' && req.url === '/pay') {
          const h = readHold(await readJson(req));
          await db.transaction((tx) => pay(tx, h));
          return sendJson(res, 200, { paid: h.amount });
        }
        if (req.method === 'GET' && req.url === '/state') {
          const accounts = await db.query<{ user_id: string; balance: number; frozen: number }>(
            'SELECT user_id, balance, frozen FROM accounts ORDER BY user_id',
          );
          const open = await storage.count({ domain: name });
          const list = await storage.list({ domain: name, limit: 1000 });
          return sendJson(res, 200, {
            accounts: Object.fromEntries(
              accounts.rows.map((r) => [r.user_id, { balance: r.balance, frozen: r.frozen }]),
            ),
            records: list.records.map((r) => ({ xid: r.xid, status: r.status, type: r.type })),
            recordCount: open,
          });
        }
        sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `${req.method} ${req.url}` } });
      } catch (error) {
        sendError(res, error);
      }
    }),
  );
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) =>
    server.listen(Number(new URL(url).port), new URL(url).hostname, resolve),
  );
  return { server, tcc };
}

function readHold(body: Record<string, unknown>): Hold {
  return {
    orderId: id(body.orderId, 'orderId'),
    userId: id(body.userId, 'userId'),
    amount: positiveInt(body.amount, 'amount'),
    ...(typeof body.delayMs === 'number' ? { delayMs: body.delayMs } : {}),
  };
}

async function migrate(db: PGlite, opening: Record<string, number>): Promise<void> {
  await db.exec(`
    CREATE TABLE IF NOT EXISTS accounts (user_id text PRIMARY KEY, balance integer NOT NULL, frozen integer NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS holds (order_id text PRIMARY KEY, user_id text NOT NULL, amount integer NOT NULL, state text NOT NULL);
  `);
  for (const [user, balance] of Object.entries({ ...opening, [SHOP]: 0 })) {
    await db.query('INSERT INTO accounts (user_id, balance) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      user,
      balance,
    ]);
  }
}

async function freeze(tx: Transaction, h: Hold): Promise<void> {
  const inserted = await tx.query(
    `INSERT INTO holds (order_id, user_id, amount, state) VALUES ($1, $2, $3, 'held') ON CONFLICT DO NOTHING`,
    [h.orderId, h.userId, h.amount],
  );
  if (inserted.affectedRows === 0)
    throw new HttpError(409, 'ORDER_SEEN', `order ${h.orderId} was already held or released`);
  const updated = await tx.query(
    'UPDATE accounts SET balance = balance - $2, frozen = frozen + $2 WHERE user_id = $1 AND balance >= $2',
    [h.userId, h.amount],
  );
  if (updated.affectedRows === 0) {
    throw new HttpError(
      409,
      'INSUFFICIENT_FUNDS',
      `${h.userId} cannot pay ${h.amount} for order ${h.orderId}`,
    );
  }
}

async function settle(tx: Transaction, h: Hold, to: 'spent' | 'released'): Promise<void> {
  const moved = await tx.query<{ amount: number }>(
    `UPDATE holds SET state = $2 WHERE order_id = $1 AND state = 'held' RETURNING amount`,
    [h.orderId, to],
  );
  const amount = moved.rows[0]?.amount;
  if (amount === undefined) {
    // Nothing held: a repeated confirm/cancel, or a cancel whose try never ran (fence it).
    if (to === 'released') {
      await tx.query(
        `INSERT INTO holds (order_id, user_id, amount, state) VALUES ($1, $2, 0, 'released') ON CONFLICT DO NOTHING`,
        [h.orderId, h.userId],
      );
    }
    return;
  }
  await tx.query('UPDATE accounts SET frozen = frozen - $2 WHERE user_id = $1', [h.userId, amount]);
  if (to === 'spent')
    await tx.query('UPDATE accounts SET balance = balance + $2 WHERE user_id = $1', [SHOP, amount]);
  else await tx.query('UPDATE accounts SET balance = balance + $2 WHERE user_id = $1', [h.userId, amount]);
}

async function pay(tx: Transaction, h: Hold): Promise<void> {
  const updated = await tx.query(
    'UPDATE accounts SET balance = balance - $2 WHERE user_id = $1 AND balance >= $2',
    [h.userId, h.amount],
  );
  if (updated.affectedRows === 0)
    throw new HttpError(409, 'INSUFFICIENT_FUNDS', `${h.userId} cannot pay ${h.amount}`);
  await tx.query('UPDATE accounts SET balance = balance + $2 WHERE user_id = $1', [SHOP, h.amount]);
}
