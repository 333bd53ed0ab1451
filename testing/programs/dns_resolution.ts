/**
 * One resolution of a `dns:` target through the registered DNS wrapper, as
 * a channel makes it, in a process of its own: grpc-js reads
 * `GRPC_NODE_USE_ALTERNATIVE_RESOLVER`, which sends its queries to the
 * target's DNS server, when it loads. Prints one JSON line: the target's
 * default authority, the addresses (sorted: DNS servers rotate them),
 * and the health-check service name handed on (absent if none was), as the
 * wrapper last handed them on.
 *
 * ```sh
 * GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true deno run ... \
 *   testing/programs/dns_resolution.ts dns://127.0.0.1:5353/backends.test:50051 [OPTIONS_JSON]
 * ```
 *
 * @module
 */
import { Resolver as DnsClient } from "node:dns/promises";
import { experimental } from "@grpc/grpc-js";
import { registerDnsHealthCheckConfig } from "../../balancer/mod.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../../balancer/health_check.ts";

registerDnsHealthCheckConfig();
const [target, options = "{}"] = Deno.args;
const parsed = new URL(target);
const uri = {
  scheme: "dns",
  authority: parsed.host,
  path: parsed.pathname.slice(1),
};

/** What one answer says, as printed. */
function described(
  endpoints: experimental.StatusOr<experimental.Endpoint[]>,
  attributes: { [key: string]: unknown },
): Record<string, unknown> {
  return {
    addresses: endpoints.ok
      ? endpoints.value.flatMap(({ addresses }) =>
        addresses.map(experimental.subchannelAddressToString)
      ).sort()
      : endpoints.error.details,
    ...(HEALTH_CHECK_SERVICE_NAME in attributes
      ? { healthService: attributes[HEALTH_CHECK_SERVICE_NAME] }
      : {}),
  };
}

let last: Record<string, unknown> | null = null;
let first: () => void;
const answered = new Promise<void>((resolve) => first = resolve);
const resolver = experimental.createResolver(uri, (endpoints, attributes) => {
  last = described(endpoints, attributes);
  first();
  return true;
}, JSON.parse(options));
resolver.updateResolution();
await answered;
// The wrapper's TXT lookup, if it makes one, goes out after the first
// answer: once the DNS server has answered a query sent after it, and its
// handler has run, whatever the wrapper hands on has been handed on.
const dns = new DnsClient();
dns.setServers([parsed.host]);
await dns.resolveTxt(uri.path.split(":")[0]).catch(() => {});
await new Promise((resolve) => setTimeout(resolve, 0));
resolver.destroy();
const resolverClass = resolver.constructor as unknown as {
  getDefaultAuthority(uri: experimental.GrpcUri): string;
};
console.log(JSON.stringify({
  authority: resolverClass.getDefaultAuthority(uri),
  ...last!,
}));
