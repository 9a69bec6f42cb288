import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freePort } from './support/redis-servers.js';
import { answers, ensurePostgres, ensureRedis } from './support/servers.js';

// The suite's own set-up (test/global-setup.ts): where nothing answers on the configured
// address it starts a throwaway server, and `stop()` takes it away again.
describe('test servers', () => {
  it('starts a throwaway Redis where none answers, and stops it', async () => {
    const server = await ensureRedis(`redis://127.0.0.1:${await freePort()}`);
    expect(server.started).toBe(true);
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(await answers(server.url, 6379)).toBe(false);
  });

  it('starts a throwaway PostgreSQL with a test database where none answers, and stops it', async () => {
    const server = await ensurePostgres(`postgres://postgres@127.0.0.1:${await freePort()}/test`);
    expect(server.started).toBe(true);
    const client = new pg.Client({ connectionString: server.url });
    try {
      await client.connect();
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      expect(rows[0]?.db).toBe('test');
    } finally {
      await client.end();
      await server.stop();
    }
    expect(await answers(server.url, 5432)).toBe(false);
  }, 120_000);

  it('uses the configured server when one answers there', async () => {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const server = await ensureRedis(url);
    expect(server).toMatchObject({ url, started: false });
  });
});
