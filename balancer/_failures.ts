/**
 * Internal: how the policies on the block say why their endpoints are down,
 * from each child's last error.
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import type { ChildState } from "./endpoint_sharding.ts";

/** How many endpoints' errors a failure names. */
const NAMED_ERRORS = 3;

/** An endpoint and its child's last error. */
export function describeChild(child: ChildState<unknown>): string {
  return `${experimental.endpointToString(child.endpoint)}: ${
    child.lastError ?? "no error reported"
  }`;
}

/**
 * Why no endpoint of `policy` is reachable: the first few endpoints' last
 * errors, and how many more there are.
 */
export function unreachable(
  policy: string,
  children: readonly ChildState<unknown>[],
): string {
  const named = children.slice(0, NAMED_ERRORS).map(describeChild);
  const more = children.length - named.length;
  return `${policy}: no endpoint is reachable: ${named.join("; ")}${
    more > 0 ? `; and ${more} more` : ""
  }`;
}
