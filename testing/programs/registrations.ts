/**
 * What each register function of the package changes in grpc-js, seen from
 * a fresh process: prints one JSON line of findings after
 * `registerCustomRoundRobin()` alone, after every register function, after
 * every one called a second time, and the addresses that `dns:` then
 * resolves `localhost` to.
 *
 * ```sh
 * deno run ... testing/programs/registrations.ts
 * ```
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import {
  registerCustomRoundRobin,
  registerDnsHealthCheckConfig,
  registerEtcdResolver,
  registerLeastRequest,
  registerRingHash,
  registerXds,
} from "../../balancer/mod.ts";

/** The class name of the resolver grpc-js makes for `scheme`, or the error. */
function resolverFor(scheme: string): string {
  try {
    const resolver = experimental.createResolver(
      { scheme, path: "localhost" },
      () => true,
      {},
    );
    resolver.destroy();
    return resolver.constructor.name;
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

/** What a channel would find now. */
function findings() {
  return {
    policy: experimental.isLoadBalancerNameRegistered("custom_round_robin"),
    leastRequest: experimental.isLoadBalancerNameRegistered(
      "least_request_experimental",
    ),
    ringHash: experimental.isLoadBalancerNameRegistered(
      "ring_hash_experimental",
    ),
    dns: resolverFor("dns"),
    etcd: resolverFor("etcd"),
    xds: resolverFor("xds"),
  };
}

async function registerAll(): Promise<void> {
  registerCustomRoundRobin();
  registerLeastRequest();
  registerRingHash();
  registerDnsHealthCheckConfig();
  registerEtcdResolver();
  await registerXds();
}

/** The addresses `dns:` resolves `localhost:1` to, or its error. */
function resolveLocalhost(): Promise<string[] | string> {
  return new Promise((resolve) => {
    const resolver = experimental.createResolver(
      { scheme: "dns", path: "localhost:1" },
      (endpoints) => {
        resolver.destroy();
        resolve(
          endpoints.ok
            ? endpoints.value.flatMap(({ addresses }) =>
              addresses.map(experimental.subchannelAddressToString)
            )
            : endpoints.error.details,
        );
        return true;
      },
      {},
    );
    resolver.updateResolution();
  });
}

const before = findings();
registerCustomRoundRobin();
const policyAlone = findings();
await registerAll();
const all = findings();
await registerAll();
const twice = findings();
console.log(JSON.stringify({
  before,
  policyAlone,
  all,
  twice,
  localhost: await resolveLocalhost(),
}));
