/**
 * `xds:///NAME` targets, through npm's `@grpc/grpc-js-xds`: a control plane
 * sends the channel its listener, cluster and endpoints, and its cluster's
 * `load_balancing_policy` may choose `custom_round_robin` (gRFC A52), named by
 * an `xds.type.v3.TypedStruct` whose `type_url` ends in the policy's name,
 * with the policy's config in its `value`.
 *
 * The package is loaded only here, on first use, as the etcd client is for
 * `etcd:` targets: a program without xDS never loads it. It is an optional
 * dependency, and needs `@grpc/grpc-js` ~1.14.5.
 *
 * @module
 */
import { experimental, logVerbosity } from "@grpc/grpc-js";

const TRACER = "xds";

/**
 * Loads `@grpc/grpc-js-xds` and registers the `xds` scheme with grpc-js;
 * channels created afterwards can use `xds:///NAME` targets. The bootstrap
 * comes from `GRPC_XDS_BOOTSTRAP` (a file) or `GRPC_XDS_BOOTSTRAP_CONFIG`
 * (the JSON itself), as for any grpc-js-xds client. Register
 * `custom_round_robin` too, so that a control plane can choose it.
 *
 * @throws {Error} saying to install the package, when it cannot be loaded.
 *
 * @example A channel whose policy a control plane chooses
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { registerCustomRoundRobin } from "../custom_round_robin.ts";
 *
 * async function connect(): Promise<grpc.Client> {
 *   registerCustomRoundRobin();
 *   await registerXds();
 *   return new grpc.Client("xds:///echo", grpc.credentials.createInsecure());
 * }
 * ```
 */
export async function registerXds(): Promise<void> {
  let xds: { register(): void };
  try {
    xds = await import("@grpc/grpc-js-xds");
  } catch (error) {
    // The loader's first line says why; Deno's goes on with a stack.
    const why = (error as Error).message.split("\n")[0];
    throw new Error(
      `xds: targets need the @grpc/grpc-js-xds package, which needs @grpc/grpc-js ~1.14.5: ${why}`,
      { cause: error },
    );
  }
  xds.register();
  experimental.trace(logVerbosity.DEBUG, TRACER, "xds scheme registered");
}
