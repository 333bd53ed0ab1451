/**
 * One resolution of a `dns:` target through the registered DNS wrapper, as
 * a channel makes it, in a process of its own: grpc-js reads
 * `GRPC_NODE_USE_ALTERNATIVE_RESOLVER`, which sends its queries to the
 * target's DNS server, when it loads. Prints one JSON line: the addresses
 * (sorted: DNS servers rotate them),
 * and the health-check service name handed on, from the first answer that
 * has one, or from the third if none has (then absent).
 *
 * ```sh
 * GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true deno run ... \
 *   testing/programs/dns_resolution.ts dns://127.0.0.1:5353/backends.test:50051 [OPTIONS_JSON]
 * ```
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import { registerDnsHealthCheckConfig } from "../../balancer/mod.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../../balancer/health_check.ts";

registerDnsHealthCheckConfig();
const [target, options = "{}"] = Deno.args;
const parsed = new URL(target);
/** Resolutions to wait for one with a health-check service name. */
const ROUNDS = 3;
const answer = await new Promise<Record<string, unknown>>((resolve) => {
  let rounds = 0;
  const resolver = experimental.createResolver(
    { scheme: "dns", authority: parsed.host, path: parsed.pathname.slice(1) },
    (endpoints, attributes) => {
      const named = HEALTH_CHECK_SERVICE_NAME in attributes;
      if (!named && ++rounds < ROUNDS) {
        // The TXT lookup starts after the first resolution: by the third,
        // a loopback DNS server has long answered it.
        setTimeout(() => resolver.updateResolution(), 0);
        return true;
      }
      resolver.destroy();
      resolve({
        addresses: endpoints.ok
          ? endpoints.value.flatMap(({ addresses }) =>
            addresses.map(experimental.subchannelAddressToString)
          ).sort()
          : endpoints.error.details,
        ...(named
          ? { healthService: attributes[HEALTH_CHECK_SERVICE_NAME] }
          : {}),
      });
      return true;
    },
    { "grpc.dns_min_time_between_resolutions_ms": 0, ...JSON.parse(options) },
  );
  resolver.updateResolution();
});
console.log(JSON.stringify(answer));
