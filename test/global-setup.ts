import { ensurePostgres, ensureRedis, type TestServer } from './support/servers.js';

/**
 * Runs once before the suite: where no Redis or PostgreSQL answers on the configured address
 * (`REDIS_URL`, `DATABASE_URL`, else the machine's defaults), starts throwaway ones and points
 * the test processes at them through those variables; stops them after the run.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const servers: TestServer[] = [];
  try {
    const redis = await ensureRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    servers.push(redis);
    const postgres = await ensurePostgres(
      process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    );
    servers.push(postgres);
    process.env.REDIS_URL = redis.url;
    process.env.DATABASE_URL = postgres.url;
    for (const [name, server] of [
      ['Redis', redis],
      ['PostgreSQL', postgres],
    ] as const) {
      if (server.started)
        console.log(`[tests] no ${name} answered; started a throwaway one at ${server.url}`);
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
  return async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
}
