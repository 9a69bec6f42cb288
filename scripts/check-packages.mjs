// `npm run check:packages`: packs every package as `npm publish` would (its prepack builds it)
// and checks each tarball with arethetypeswrong, every resolution mode (node10, node16 from
// CommonJS and from ESM, bundler), and publint. No rule is ignored.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const bin = (name) => join(root, 'node_modules', '.bin', name);
// Core first: the others' builds reference it, and its prepack empties its `dist`.
const packages = ['core', 'storage-redis', 'storage-sql', 'recovery'];

const out = mkdtempSync(join(tmpdir(), 'tcc-packs-'));
let failed = false;
try {
  const tarballs = [];
  for (const name of packages) {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: join(root, 'packages', name),
      maxBuffer: 64 * 1024 * 1024,
    });
    tarballs.push(join(out, JSON.parse(stdout)[0].filename));
  }
  const checks = tarballs.flatMap((tarball) => [
    [bin('attw'), [tarball, '--profile', 'strict', '--format', 'table-flipped', '--no-color']],
    [bin('publint'), ['run', tarball, '--strict']],
  ]);
  const results = await Promise.all(
    checks.map(([command, args]) =>
      run(command, args, { cwd: root }).then(
        ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
        (error) => ({ ok: false, output: `${error.stdout ?? ''}${error.stderr ?? ''}` || String(error) }),
      ),
    ),
  );
  for (const [i, { ok, output }] of results.entries()) {
    const [command, args] = checks[i];
    console.log(
      `\n${ok ? 'ok  ' : 'FAIL'} ${command.split('/').pop()} ${args[0] === 'run' ? args[1] : args[0]}`,
    );
    console.log(output.trim());
    failed ||= !ok;
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (failed) {
  console.error('\ncheck:packages: a package failed arethetypeswrong or publint (above)');
  process.exitCode = 1;
}
