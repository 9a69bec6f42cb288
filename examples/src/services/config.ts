import { fileURLToPath } from 'node:url';

/** The three services of the shop, as separate processes. */
export const SERVICES = ['order', 'capital', 'red-packet'] as const;
export type ServiceName = (typeof SERVICES)[number];

const DEFAULT_PORTS: Record<ServiceName, number> = { order: 4100, capital: 4101, 'red-packet': 4102 };
const ENV: Record<ServiceName, string> = {
  order: 'SHOP_ORDER_URL',
  capital: 'SHOP_CAPITAL_URL',
  'red-packet': 'SHOP_RED_PACKET_URL',
};

/** Base URL of a service: `SHOP_<NAME>_URL`, else 127.0.0.1 on its default port. */
export function urlOf(name: ServiceName, env: NodeJS.ProcessEnv = process.env): string {
  return env[ENV[name]] ?? `http://127.0.0.1:${DEFAULT_PORTS[name]}`;
}

export function envFor(urls: Record<ServiceName, string>): Record<string, string> {
  return Object.fromEntries(SERVICES.map((name) => [ENV[name], urls[name]]));
}

/** Where each service keeps its PGlite database: `SHOP_DATA/<name>`. */
export function dataDir(name: ServiceName): string {
  const root =
    process.env.SHOP_DATA ?? fileURLToPath(new URL('../../../.tcc-data/services', import.meta.url));
  return `${root}/${name}`;
}

/**
 * The secret the services sign context headers and `.tcc` commands with. The default is for
 * the demo only: set `TCC_SECRET` (the same on every service) anywhere else.
 */
export function secret(): string {
  return process.env.TCC_SECRET ?? 'demo-secret-change-me-0123456789';
}

/** `SHOP_TEST_HOOKS=1` lets a request ask a try to wait (`delayMs`): tests use it to kill a service mid-transaction. */
export const TEST_HOOKS = process.env.SHOP_TEST_HOOKS === '1';
