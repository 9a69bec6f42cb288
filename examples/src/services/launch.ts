import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServiceName } from './config.js';

const SERVICE_JS = fileURLToPath(new URL('./service.js', import.meta.url));

/**
 * Starts one service as its own process and resolves once it prints `ready`. The bound only
 * catches a service that never starts: opening a fresh PGlite takes many seconds on a busy machine.
 */
export function launch(
  name: ServiceName,
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SERVICE_JS, name], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`ready ${name}`)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${out}`));
    });
  });
}
