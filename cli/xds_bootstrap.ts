/**
 * The client's check of an xDS bootstrap, before `@grpc/grpc-js-xds` reads
 * it: that package reports a missing, unreadable or malformed bootstrap
 * only when a channel is made, and then as `Cannot read properties of null
 * (reading 'clientDefaultListenerResourceNameTemplate')`.
 *
 * @module
 */
import process from "node:process";

/** Where the programs may read a bootstrap file: deno.json's `program` set. */
const READABLE = "certs/";

/**
 * Checks the bootstrap as grpc-js-xds will find it: the file named by
 * `GRPC_XDS_BOOTSTRAP`, else the JSON in `GRPC_XDS_BOOTSTRAP_CONFIG`. It
 * must be there, readable by the program, JSON, and name at least one
 * server in `xds_servers`. Returns the servers' `server_uri`s.
 *
 * @throws {Error} saying in one line what is wrong, and what to do.
 *
 * @example A bootstrap given as JSON
 * ```ts
 * import process from "node:process";
 *
 * process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
 *   xds_servers: [{ server_uri: "localhost:18000" }],
 *   node: { id: "echo-client" },
 * });
 * checkXdsBootstrap();
 * ```
 */
export function checkXdsBootstrap(): string[] {
  const path = process.env.GRPC_XDS_BOOTSTRAP;
  const json = process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
  if (!path && !json) {
    throw new Error(
      `xds: targets need a bootstrap: set GRPC_XDS_BOOTSTRAP to a bootstrap file in ${READABLE}, or GRPC_XDS_BOOTSTRAP_CONFIG to its JSON (docs/xds.md)`,
    );
  }
  const source = path
    ? `the xDS bootstrap file ${path}`
    : "the xDS bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG";
  let bootstrap: unknown;
  try {
    bootstrap = JSON.parse(path ? readBootstrap(path) : json!);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new Error(`${source} is not JSON: ${error.message}`, {
      cause: error,
    });
  }
  const servers = (bootstrap as { xds_servers?: unknown } | null)
    ?.xds_servers;
  const uris = Array.isArray(servers)
    ? servers.map((server) => server?.server_uri)
    : [];
  if (uris.length === 0 || uris.some((uri) => typeof uri !== "string")) {
    throw new Error(
      `${source} names no control plane: it needs "xds_servers": [{"server_uri": "HOST:PORT"}]`,
    );
  }
  return uris;
}

/** The text of the bootstrap file at `path`. */
function readBootstrap(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotCapable
      ? `the programs may read files in ${READABLE} only: put it there`
      : (error as Error).message;
    throw new Error(`cannot read the xDS bootstrap file ${path}: ${why}`, {
      cause: error,
    });
  }
}
