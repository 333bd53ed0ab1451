/**
 * Builds the npm package of `balancer/` from the same sources: ESM
 * JavaScript and `.d.ts` files made by the TypeScript compiler (pinned in
 * `npm/package.json`), a `package.json` with `@grpc/grpc-js` as a peer
 * dependency, and `npm pack` of it. Prints the tarball's path.
 *
 * ```sh
 * deno task build:npm     # dist/npm/ and dist/customlb-custom-round-robin-<version>.tgz
 * ```
 *
 * @module
 */
import { GRPC_JS_RANGE } from "./grpc_js_range.ts";
import { run } from "./projects.ts";

const ROOT = new URL("..", import.meta.url);
const at = (path: string) => new URL(path, ROOT);

const config = JSON.parse(await Deno.readTextFile(at("deno.json")));

try {
  await Deno.stat(at("npm/node_modules/typescript"));
} catch {
  await run(
    "npm",
    ["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
    at("npm/"),
  );
}

for (const path of ["npm/src", "dist"]) {
  await Deno.remove(at(path), { recursive: true }).catch(() => {});
}
/** Copies the `.ts` files of `balancer/<folder>`, and its folders', to `npm/src/`. */
async function copySources(folder: string): Promise<void> {
  await Deno.mkdir(at(`npm/src/${folder}`), { recursive: true });
  for await (const entry of Deno.readDir(at(`balancer/${folder}`))) {
    const path = `${folder}${entry.name}`;
    if (entry.isDirectory) await copySources(`${path}/`);
    else if (entry.name.endsWith(".ts")) {
      await Deno.copyFile(at(`balancer/${path}`), at(`npm/src/${path}`));
    }
  }
}
await copySources("");
// The sources are ES modules; this makes the compiler emit them as such.
await Deno.writeTextFile(at("npm/src/package.json"), '{ "type": "module" }\n');
await run("node", ["node_modules/typescript/bin/tsc", "-p", "."], at("npm/"));

const manifest = {
  name: config.name,
  version: config.version,
  description:
    "custom_round_robin: a custom load-balancing policy for @grpc/grpc-js, with client-side health checking (gRFC A17)",
  license: config.license,
  type: "module",
  exports: {
    ".": { types: "./esm/mod.d.ts", default: "./esm/mod.js" },
    "./etcd": { types: "./esm/etcd.d.ts", default: "./esm/etcd.js" },
  },
  types: "./esm/mod.d.ts",
  files: ["esm", "README.md", "LICENSE"],
  engines: { node: ">=18" },
  peerDependencies: {
    "@grpc/grpc-js": GRPC_JS_RANGE,
    "@grpc/grpc-js-xds": "^1.14.1",
    // One copy per application, as OpenTelemetry asks of libraries: the
    // global MeterProvider lives in it.
    "@opentelemetry/api": "^1.9.0",
  },
  // Only registerXds loads it, for xds: targets; it needs @grpc/grpc-js
  // ~1.14.5.
  peerDependenciesMeta: { "@grpc/grpc-js-xds": { optional: true } },
  dependencies: {
    "cockatiel": "^3.1.1",
    "etcd3": "^1.1.2",
    "grpc-health-check": "^2.1.0",
    "xxhash-wasm": "^1.1.0",
  },
};
await Deno.writeTextFile(
  at("dist/npm/package.json"),
  JSON.stringify(manifest, null, 2) + "\n",
);
// The package's own README, for Node and Bun users, not the repository's.
await Deno.copyFile(at("npm/README.md"), at("dist/npm/README.md"));
await Deno.copyFile(at("LICENSE"), at("dist/npm/LICENSE"));
const tarball =
  (await run("npm", ["pack", "--pack-destination", ".."], at("dist/npm/")))
    .trim()
    .split("\n").at(-1)!;
console.log(`dist/${tarball}`);
