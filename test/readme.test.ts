import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const scratch = fileURLToPath(new URL('./.readme/', import.meta.url));

/** The ```ts blocks of a markdown file that import the SDK, in order. */
function examples(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((code) => code.includes("from '@tcc/core'"));
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

for (const readme of ['README.md', 'packages/core/README.md']) {
  describe(`${readme} examples`, () => {
    const blocks = examples(readFileSync(`${repoRoot}${readme}`, 'utf8'));

    it('has at least one runnable example', () => {
      expect(blocks.length).toBeGreaterThan(0);
    });

    blocks.forEach((code, i) => {
      it(`example ${i + 1} runs as written and leaves no transaction behind`, async () => {
        mkdirSync(scratch, { recursive: true });
        const file = `${scratch}${readme.replaceAll('/', '-')}-${i + 1}.ts`;
        // The example's own `tcc` is exported so the test can look at the store it used.
        writeFileSync(file, `${code}\nexport { tcc };\n`);
        const module = (await import(/* @vite-ignore */ file)) as {
          tcc: { storage: { count(q: object): Promise<number> } };
        };
        expect(await module.tcc.storage.count({})).toBe(0);
        // Example 3 starts services and waits out a deadline: bounded only against a hang.
      }, 180_000);
    });
  });
}
