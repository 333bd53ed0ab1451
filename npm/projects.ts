/**
 * The projects a user of the package would have, one per runtime, made in
 * temporary folders: for the conformance check and the runtime benchmark.
 *
 * @module
 */
import { GRPC_JS_RANGE } from "./grpc_js_range.ts";
import { lineReader } from "../testing/processes.ts";

const ROOT = new URL("..", import.meta.url);
const decoder = new TextDecoder();

/** Runs a command to its end; resolves to its stdout, fails with stderr. */
export async function run(command: string, args: string[], cwd: string | URL) {
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

/** The version `command --version` prints, or `null` if it is not installed. */
async function installed(command: string): Promise<string | null> {
  try {
    return await run(command, ["--version"], ROOT);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** A runtime and how it runs a module in the project made for it. */
export interface Runtime {
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

/**
 * Packs the package and makes a project per runtime that installs it, with
 * the newest `@grpc/grpc-js` of the range the package claims: an npm project
 * for Node and Bun, a Deno project that maps the package's name to
 * `balancer/mod.ts`.
 */
export async function runtimeProjects(): Promise<
  { runtimes: Runtime[]; grpcJs: string }
> {
  const grpcJs = (await run("npm", [
    "view",
    `@grpc/grpc-js@${GRPC_JS_RANGE}`,
    "version",
  ], ROOT)).split("\n").at(-1)!.replace(/.* '(.+)'$/, "$1");
  const npmProject = await makeNpmProject(grpcJs);
  const runtimes = [denoRuntime(await makeDenoProject(grpcJs))];
  for (const name of ["node", "bun"]) {
    const version = await installed(name);
    if (version === null) {
      console.log(`${name}: not found, skipped (npm install -g ${name})`);
      continue;
    }
    runtimes.push({
      name,
      version,
      project: npmProject,
      command: (module, args, stdin) =>
        new Deno.Command(name, {
          args: [module, ...args],
          cwd: npmProject,
          stdin,
          stdout: "piped",
          stderr: "piped",
        }),
    });
  }
  return { runtimes, grpcJs };
}

/** The import map of the project's `deno.json`. */
async function projectImports(): Promise<Record<string, string>> {
  return JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)))
    .imports;
}

/** An npm project that installs the packed package and `grpcJs`. */
async function makeNpmProject(grpcJs: string): Promise<string> {
  const tarball = await run("deno", ["task", "-q", "build:npm"], ROOT);
  const project = await Deno.makeTempDir({
    dir: "/tmp",
    prefix: "conformance-npm-",
  });
  await Deno.writeTextFile(
    `${project}/package.json`,
    JSON.stringify({ type: "module", private: true }),
  );
  await run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    new URL(tarball, ROOT).pathname,
    `@grpc/grpc-js@${grpcJs}`,
    // The optional peer that registerXds loads, for the xds:/// check: the
    // release the project's own deno.json pins.
    (await projectImports())["@grpc/grpc-js-xds"].replace(/^npm:/, ""),
  ], project);
  return project;
}

/**
 * A Deno project whose `deno.json` maps the package's name to
 * `balancer/mod.ts`, with `grpcJs`.
 */
async function makeDenoProject(grpcJs: string): Promise<string> {
  const project = await Deno.makeTempDir({
    dir: "/tmp",
    prefix: "conformance-deno-",
  });
  const imports = await projectImports();
  await Deno.writeTextFile(
    `${project}/deno.json`,
    JSON.stringify({
      nodeModulesDir: "auto",
      allowScripts: { deny: ["npm:protobufjs"] },
      imports: {
        ...imports,
        "@grpc/grpc-js": `npm:@grpc/grpc-js@${grpcJs}`,
        "@customlb/custom-round-robin": new URL("balancer/mod.ts", ROOT).href,
      },
    }),
  );
  return project;
}

/** Deno, running modules in `project` with a gRPC program's permissions. */
function denoRuntime(project: string): Runtime {
  return {
    name: "deno",
    version: Deno.version.deno,
    project,
    command: (module, args, stdin) =>
      new Deno.Command("deno", {
        args: [
          "run",
          "-q",
          "--allow-net=127.0.0.1,localhost",
          // A dynamic import of the balancer needs to read it.
          `--allow-read=.,${new URL("balancer", ROOT).pathname}`,
          "--allow-sys=uid,gid",
          // grpc-js-xds's HTTP client reads the upper-case proxy variables.
          "--allow-env=GRPC_*,grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy,HTTPS_PROXY,HTTP_PROXY",
          module,
          ...args,
        ],
        cwd: project,
        stdin,
        stdout: "piped",
        stderr: "piped",
      }),
  };
}

/** Removes the projects' folders. */
export async function removeProjects(runtimes: readonly Runtime[]) {
  for (const project of new Set(runtimes.map((runtime) => runtime.project))) {
    await Deno.remove(project, { recursive: true }).catch(() => {});
  }
}

/** A program that answers each command line with one JSON line. */
export interface LineClient {
  /** Sends `command`; resolves to the answer. */
  ask(command: string): Promise<Record<string, unknown>>;
  /** Closes its stdin and waits for it to end. */
  close(): Promise<void>;
}

/**
 * Starts the plain JavaScript program `source` on `runtime`, in the
 * runtime's project, with `@customlb/custom-round-robin` and `args` as its
 * arguments.
 */
export async function startLineClient(
  runtime: Runtime,
  source: URL,
  args: readonly string[],
): Promise<LineClient> {
  const module = `${runtime.project}/${source.pathname.split("/").at(-1)}`;
  await Deno.copyFile(source, module);
  const child = runtime.command(module, [
    "@customlb/custom-round-robin",
    ...args,
  ], "piped").spawn();
  const writer = child.stdin.getWriter();
  const lines = lineReader(child.stdout);
  const stderr = new Response(child.stderr).text();
  return {
    async ask(command) {
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
