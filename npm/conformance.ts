/**
 * The conformance check: the balancer, as a user installs it, on Deno, Node
 * and Bun, against this project's echo servers on free ports.
 *
 * It packs the npm package (`npm/build.ts`), installs the tarball into a
 * temporary npm project for Node and Bun, and maps the package's name to
 * `balancer/mod.ts` in a temporary Deno project. Then, on each runtime, the
 * same client (`npm/conformance_client.mjs`) proves: the 1:2 pattern;
 * `chooseSecond: 0` sending all to the first; an invalid config failing with
 * the one-line error; a NOT_SERVING backend getting no RPC and its share
 * back on SERVING; both backends down failing with UNAVAILABLE naming both.
 * Last, it runs README's module as written against servers on
 * localhost:50050 and :50051.
 *
 * Prints one line per runtime and check, with the runtime's version and, for
 * a failure, what failed; exits 1 if anything failed.
 *
 * ```sh
 * deno task conformance
 * ```
 *
 * @module
 */
import { GRPC_JS_RANGE } from "./grpc_js_range.ts";
import {
  type EchoServer,
  setServing,
  startEchoServer,
  stopEchoServers,
} from "../server.ts";
import { lineReader } from "../tests/processes.ts";

const ROOT = new URL("..", import.meta.url);
const decoder = new TextDecoder();

/** Runs a command to its end; resolves to its stdout, fails with stderr. */
async function run(command: string, args: string[], cwd: string | URL) {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")}: ${decoder.decode(stderr).trim()}`,
    );
  }
  return decoder.decode(stdout).trim();
}

/** A runtime and how it runs a module in the project made for it. */
interface Runtime {
  readonly name: string;
  readonly version: string;
  readonly project: string;
  /** A command that runs `module` with `args`; stdin piped for the client. */
  command(
    module: string,
    args: string[],
    stdin: "piped" | "null",
  ): Deno.Command;
}

const GRPC_JS = (await run("npm", [
  "view",
  `@grpc/grpc-js@${GRPC_JS_RANGE}`,
  "version",
], ROOT)).split("\n").at(-1)!.replace(/.* '(.+)'$/, "$1");

/** Packs the package and makes the projects that install it. */
async function projects(): Promise<Runtime[]> {
  const tarball = await run("deno", ["task", "-q", "build:npm"], ROOT);
  const npmProject = await Deno.makeTempDir({
    dir: "/tmp",
    prefix: "conformance-npm-",
  });
  await Deno.writeTextFile(
    `${npmProject}/package.json`,
    JSON.stringify({ type: "module", private: true }),
  );
  await run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    new URL(tarball, ROOT).pathname,
    `@grpc/grpc-js@${GRPC_JS}`,
  ], npmProject);

  const denoProject = await Deno.makeTempDir({
    dir: "/tmp",
    prefix: "conformance-deno-",
  });
  const imports = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ).imports;
  await Deno.writeTextFile(
    `${denoProject}/deno.json`,
    JSON.stringify({
      nodeModulesDir: "auto",
      allowScripts: { deny: ["npm:protobufjs"] },
      imports: {
        ...imports,
        "@grpc/grpc-js": `npm:@grpc/grpc-js@${GRPC_JS}`,
        "@customlb/custom-round-robin": new URL("balancer/mod.ts", ROOT).href,
      },
    }),
  );

  const nodeRun =
    (command: string) =>
    (module: string, args: string[], stdin: "piped" | "null") =>
      new Deno.Command(command, {
        args: [module, ...args],
        cwd: npmProject,
        stdin,
        stdout: "piped",
        stderr: "piped",
      });
  return [
    {
      name: "deno",
      version: Deno.version.deno,
      project: denoProject,
      command: (module, args, stdin) =>
        new Deno.Command("deno", {
          args: [
            "run",
            "-q",
            "--allow-net=127.0.0.1,localhost",
            // A dynamic import of the balancer needs to read it.
            `--allow-read=.,${new URL("balancer", ROOT).pathname}`,
            "--allow-sys=uid,gid",
            "--allow-env=GRPC_*,grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy",
            module,
            ...args,
          ],
          cwd: denoProject,
          stdin,
          stdout: "piped",
          stderr: "piped",
        }),
    },
    {
      name: "node",
      version: await run("node", ["--version"], ROOT),
      project: npmProject,
      command: nodeRun("node"),
    },
    {
      name: "bun",
      version: await run("bun", ["--version"], ROOT),
      project: npmProject,
      command: nodeRun("bun"),
    },
  ];
}

/** The client of one runtime, spoken to a line at a time. */
async function startClient(runtime: Runtime, servers: EchoServer[]) {
  const module = `${runtime.project}/conformance_client.mjs`;
  await Deno.copyFile(
    new URL("conformance_client.mjs", import.meta.url),
    module,
  );
  const child = runtime.command(module, [
    "@customlb/custom-round-robin",
    ...servers.map(({ address }) => address),
  ], "piped").spawn();
  const writer = child.stdin.getWriter();
  const lines = lineReader(child.stdout);
  const stderr = new Response(child.stderr).text();
  return {
    async ask(command: string): Promise<Record<string, unknown>> {
      await writer.write(new TextEncoder().encode(`${command}\n`));
      const { value, done } = await lines.next();
      if (done) throw new Error(`the client ended: ${await stderr}`);
      return JSON.parse(value);
    },
    async close() {
      await writer.close().catch(() => {}); // it may have ended
      for await (const _ of lines);
      await child.status;
      await stderr;
    },
  };
}

type Client = Awaited<ReturnType<typeof startClient>>;

/** One check: resolves to `null` if it held, else what went wrong. */
type Check = (
  client: Client,
  servers: EchoServer[],
) => Promise<string | null>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CHECKS: [string, Check][] = [
  ["1:2 pattern", async (client, [a, b]) => {
    const { servers } = await client.ask("pattern 3 9");
    const expected = [a, a, b, a, a, b, a, a, b].map((s) => s.address);
    return JSON.stringify(servers) === JSON.stringify(expected)
      ? null
      : `got ${JSON.stringify(servers)}`;
  }],
  ["chooseSecond 0: all to the first", async (client, [a]) => {
    const { servers } = await client.ask("pattern 0 9");
    return (servers as string[]).every((s) => s === a.address)
      ? null
      : `got ${JSON.stringify(servers)}`;
  }],
  ["invalid config: one-line error", async (client) => {
    const { error } = await client.ask(
      'config {"loadBalancingConfig":[{"custom_round_robin":{"chooseSecond":-1}}]}',
    );
    const expected =
      "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1";
    return error === expected ? null : `got ${JSON.stringify(error)}`;
  }],
  ["NOT_SERVING: no RPC; SERVING: share back", async (client, [a, b]) => {
    const opened = await client.ask("open");
    if (!opened.ok) return String(opened.error);
    setServing(b, false);
    await sleep(500);
    const away = (await client.ask("send 30")).servers as string[];
    if (away.some((s) => s !== a.address)) {
      return `while NOT_SERVING: ${JSON.stringify(away)}`;
    }
    setServing(b, true);
    const end = performance.now() + 5000;
    while (performance.now() < end) {
      const back = (await client.ask("send 3")).servers as string[];
      if (back.includes(b.address)) return null;
    }
    return "no RPC reached it within 5 s of SERVING";
  }],
  ["both down: UNAVAILABLE naming both", async (client, servers) => {
    await stopEchoServers(servers, { drainMs: 0, graceMs: 500 });
    const { code, details } = await client.ask("fail");
    const named = servers.every(({ address }) =>
      String(details).includes(address)
    );
    return code === 14 && named ? null : `got ${code}: ${details}`;
  }],
];

/** README's module, as written. */
async function readmeModule(): Promise<string> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const match = readme.match(
    /<!-- conformance: deno, node, bun -->\s*```js\n([\s\S]*?)```/,
  );
  if (!match) throw new Error("README has no module marked for conformance");
  return match[1];
}

const runtimes = await projects();
const snippet = await readmeModule();
let failed = 0;
const report = (runtime: Runtime, check: string, problem: string | null) => {
  if (problem !== null) failed++;
  console.log(
    `${runtime.name} ${runtime.version}: ${check}: ${
      problem === null ? "ok" : `FAILED: ${problem}`
    }`,
  );
};
for (const runtime of runtimes) {
  const servers = [
    await startEchoServer("127.0.0.1:0"),
    await startEchoServer("127.0.0.1:0"),
  ];
  const client = await startClient(runtime, servers);
  try {
    for (const [name, check] of CHECKS) {
      report(runtime, name, await check(client, servers).catch(String));
    }
  } finally {
    await client.close();
    await stopEchoServers(servers, { drainMs: 0, graceMs: 500 });
  }

  const readmeServers = [
    await startEchoServer("localhost:50050"),
    await startEchoServer("localhost:50051"),
  ];
  try {
    const module = `${runtime.project}/readme.mjs`;
    await Deno.writeTextFile(module, snippet);
    const { code, stdout, stderr } = await runtime.command(module, [], "null")
      .output();
    const out = decoder.decode(stdout).trim();
    report(
      runtime,
      "README's module as written",
      code === 0 && out === "ready"
        ? null
        : `exit ${code}: ${out} ${decoder.decode(stderr).trim()}`,
    );
  } finally {
    await stopEchoServers(readmeServers, { drainMs: 0, graceMs: 500 });
  }
}
for (const runtime of runtimes) {
  await Deno.remove(runtime.project, { recursive: true }).catch(() => {});
}
console.log(
  failed === 0
    ? `conformance: ${runtimes.length * (CHECKS.length + 1)} checks passed on ${
      runtimes.map((r) => r.name).join(", ")
    } with @grpc/grpc-js ${GRPC_JS}`
    : `conformance: ${failed} checks failed`,
);
Deno.exit(failed === 0 ? 0 : 1);
