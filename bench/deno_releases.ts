/**
 * The Deno crash regression against given Deno releases: for each, the
 * server-outlives-busy-clients test (`deno task test --filter "outlives
 * eight"`) run several times with that release first on `PATH` (it fails when
 * the server dies), and whether
 * `deno task server` prints its start-up warning there. Each release is
 * installed from npm into `~/.cache/deno-<version>` when it is not there yet,
 * as `.ci/run` installs the pinned one.
 *
 * Prints one line per release; docs/known_issues.md's table is its output.
 *
 * ```sh
 * deno task regression:deno 2.9.3 2.9.6      # 4 runs each
 * deno task regression:deno --runs 6 2.9.5
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "4" } },
  allowPositionals: true,
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || positionals.length === 0) {
  console.error(
    "usage: deno task regression:deno [--runs N] VERSION [VERSION ...]",
  );
  Deno.exit(2);
}
const cache = `${
  Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`
}`;

/** Runs `script` in sh with `version`'s Deno first on PATH; its output. */
async function sh(version: string, script: string) {
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: ["-c", script],
    env: {
      PATH: `${cache}/deno-${version}/bin:${Deno.env.get("PATH")}`,
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
}

for (const version of positionals) {
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    console.error(`regression:deno: not a Deno version: "${version}"`);
    Deno.exit(2);
  }
  const installed = await sh(
    version,
    `[ -x "${cache}/deno-${version}/bin/deno" ] || npm install -g --silent --prefix "${cache}/deno-${version}" "deno@${version}"; deno --version`,
  );
  if (!installed.out.startsWith(`deno ${version} `)) {
    console.log(`${version}: could not install it: ${installed.out.trim()}`);
    continue;
  }
  let failed = 0;
  for (let run = 0; run < runs; run++) {
    const { code } = await sh(
      version,
      `deno task test --filter "outlives eight"`,
    );
    if (code !== 0) failed++;
  }
  const started = await sh(
    version,
    `deno task server --addrs 127.0.0.1:0 & sleep 3; kill $!; wait`,
  );
  const warned = started.out.includes("server: warning: Deno");
  console.log(
    `${version}: the regression test failed in ${failed} of ${runs} runs; server.ts ${
      warned ? "warns" : "does not warn"
    } at start`,
  );
}
