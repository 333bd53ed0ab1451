/**
 * What each register function of the package changes in grpc-js, seen from
 * a fresh process: prints one JSON line of findings after
 * `registerCustomRoundRobin()` alone, then after the DNS and etcd ones.
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
    dns: resolverFor("dns"),
    etcd: resolverFor("etcd"),
  };
}

const before = findings();
registerCustomRoundRobin();
const policyAlone = findings();
registerDnsHealthCheckConfig();
registerEtcdResolver();
console.log(JSON.stringify({ before, policyAlone, all: findings() }));
