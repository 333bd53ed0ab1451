/**
 * A first run fetches only what it runs. With `nodeModulesDir: "auto"`, Deno
 * installs every package of `deno.lock` before the first line runs, so the
 * root config may hold only what the programs import; the dev tools (Stryker,
 * vega) have configs and lockfiles of their own, fetched when their task runs.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);
const PROGRAMS = ["client.ts", "server.ts", "demo.ts"];
const DEV_CONFIGS = ["tests/mutation/deno.json", "bench/chart/deno.json"];

interface Config {
  readonly imports: Record<string, string>;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(path, ROOT)));
}

/** The npm package named by a specifier such as `npm:@scope/name@^1.0.0`. */
function packageName(specifier: string): string {
  const match = specifier.match(/^npm:\/?(@?[^@]+)/);
  assert.ok(match, `an npm specifier: ${specifier}`);
  return match[1];
}

/** The npm packages that the programs' module graph reaches. */
async function programPackages(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const program of PROGRAMS) {
    const { code, stdout } = await new Deno.Command("deno", {
      args: ["info", "--json", program],
      cwd: ROOT,
      stderr: "inherit",
    }).output();
    assert.equal(code, 0, `deno info ${program}`);
    const graph = JSON.parse(new TextDecoder().decode(stdout));
    for (const { kind, specifier } of graph.modules) {
      if (kind === "npm") names.add(packageName(specifier));
    }
  }
  return names;
}

Deno.test("dependencies: the root config maps exactly what the programs import", async () => {
  const { imports } = await readJson<Config>("deno.json");
  const mapped = new Set(Object.values(imports).map(packageName));
  assert.deepEqual([...mapped].sort(), [...await programPackages()].sort());
});

Deno.test("dependencies: no dev tool is in the root lockfile, so a first run does not install it", async () => {
  const lock = await readJson<{ specifiers: Record<string, string> }>(
    "deno.lock",
  );
  const locked = new Set(Object.keys(lock.specifiers).map(packageName));
  for (const path of DEV_CONFIGS) {
    const { imports } = await readJson<Config>(path);
    for (const specifier of Object.values(imports)) {
      const name = packageName(specifier);
      assert.ok(!locked.has(name), `${name} (${path}) is in deno.lock`);
    }
  }
});
