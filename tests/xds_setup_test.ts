/**
 * xDS set-up mistakes, each one line from the client that names it: no
 * bootstrap, a bootstrap file the task may not read, one that is not JSON
 * or names no control plane, and `@grpc/grpc-js-xds` missing.
 */
import assert from "node:assert/strict";
import { type Finished, runTask } from "../testing/processes.ts";

const ROOT = new URL("..", import.meta.url);

/** `deno task client --target xds:///echo` with `env`. */
function client(env: Record<string, string>): Promise<Finished> {
  return runTask(["client", "--target", "xds:///echo"], env);
}

/** Asserts that `run` failed with exit 1 and `line` alone on stderr. */
function assertOneLine(run: Finished, line: string | RegExp): void {
  assert.equal(run.code, 1);
  assert.deepEqual(run.stdout, []);
  assert.equal(run.stderr.length, 1, run.stderr.join("\n"));
  if (typeof line === "string") assert.equal(run.stderr[0], line);
  else assert.match(run.stderr[0], line);
}

Deno.test("xds setup: no bootstrap variable", async () => {
  assertOneLine(
    await client({}),
    "client: xds: targets need a bootstrap: set GRPC_XDS_BOOTSTRAP to a bootstrap file in certs/, or GRPC_XDS_BOOTSTRAP_CONFIG to its JSON (docs/xds.md)",
  );
});

Deno.test("xds setup: a bootstrap file the task may not read, and one that is not there", async () => {
  const path = await Deno.makeTempFile({ dir: "/tmp", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, '{"xds_servers": []}');
    assertOneLine(
      await client({ GRPC_XDS_BOOTSTRAP: path }),
      `client: cannot read the xDS bootstrap file ${path}: the programs may read files in certs/ only: put it there`,
    );
  } finally {
    await Deno.remove(path);
  }
  assertOneLine(
    await client({ GRPC_XDS_BOOTSTRAP: "certs/no-such-bootstrap.json" }),
    /^client: cannot read the xDS bootstrap file certs\/no-such-bootstrap\.json: No such file or directory/,
  );
});

Deno.test("xds setup: a bootstrap file that is not JSON", async () => {
  await Deno.mkdir(new URL("certs", ROOT), { recursive: true });
  const path = "certs/xds-setup-test-bootstrap.json";
  await Deno.writeTextFile(new URL(path, ROOT), "xds_servers: []");
  try {
    assertOneLine(
      await client({ GRPC_XDS_BOOTSTRAP: path }),
      /^client: the xDS bootstrap file certs\/xds-setup-test-bootstrap\.json is not JSON: /,
    );
  } finally {
    await Deno.remove(new URL(path, ROOT));
  }
});

Deno.test("xds setup: a bootstrap without xds_servers", async () => {
  for (const config of ['{"node": {"id": "echo"}}', '{"xds_servers": []}']) {
    assertOneLine(
      await client({ GRPC_XDS_BOOTSTRAP_CONFIG: config }),
      'client: the xDS bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG names no control plane: it needs "xds_servers": [{"server_uri": "HOST:PORT"}]',
    );
  }
});

Deno.test("xds setup: without @grpc/grpc-js-xds, registerXds says to install it, in one line", async () => {
  // An import map with grpc-js alone, from Deno's cache: nothing is fetched.
  const map = await Deno.makeTempFile({ dir: "/tmp", suffix: ".json" });
  try {
    const grpcJs = JSON.parse(
      await Deno.readTextFile(new URL("deno.json", ROOT)),
    ).imports["@grpc/grpc-js"];
    await Deno.writeTextFile(
      map,
      JSON.stringify({ imports: { "@grpc/grpc-js": grpcJs } }),
    );
    const { code, stdout, stderr } = await new Deno.Command("deno", {
      args: [
        "run",
        "-q",
        "--cached-only",
        "--no-config",
        `--import-map=${map}`,
        "--allow-read",
        // Stryker's variable names the mutant under test in deno task mutation.
        "--allow-env=GRPC_*,__STRYKER_ACTIVE_MUTANT__",
        "--allow-sys=uid,gid",
        "testing/programs/register_xds.ts",
      ],
      cwd: ROOT,
    }).output();
    const text = new TextDecoder();
    assert.equal(code, 0, text.decode(stderr));
    const { message, cause } = JSON.parse(text.decode(stdout));
    assert.equal(cause, true, "the loader's error kept as the cause");
    assert.match(
      message,
      /^xds: targets need the @grpc\/grpc-js-xds package, which needs @grpc\/grpc-js ~1\.14\.5: Import "@grpc\/grpc-js-xds" not a dependency/,
    );
    assert.ok(!message.includes("\n"), message);
  } finally {
    await Deno.remove(map);
  }
});
