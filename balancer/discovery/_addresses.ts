/**
 * Internal: turning `host:port` endpoints into grpc-js endpoints, for the
 * resolvers of this package.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { experimental } from "@grpc/grpc-js";

type Endpoint = experimental.Endpoint;

/**
 * Resolves `host:port` to an endpoint holding all of the host's addresses,
 * with `hashKey` (gRFC A76), when given, where ring_hash reads it.
 */
export async function resolveEndpoint(
  hostPort: string,
  hashKey?: string,
): Promise<Endpoint> {
  const parsed = experimental.splitHostPort(hostPort);
  if (parsed === null || parsed.port === undefined) {
    throw new Error(`endpoint must be host:port, got "${hostPort}"`);
  }
  const { host, port } = parsed;
  const named = hashKey === undefined ? {} : { hashKey };
  if (isIP(host)) return { addresses: [{ host, port }], ...named };
  try {
    const found = await lookup(host, { all: true });
    return {
      addresses: found.map(({ address }) => ({ host: address, port })),
      ...named,
    };
  } catch (error) {
    throw new Error(`cannot resolve ${host}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The host name each resolved address is verified against over TLS: the
 * name its endpoint was given by (none for an IP address).
 */
export function serverNames(
  given: readonly string[],
  resolved: readonly Endpoint[],
): Record<string, string> {
  const names: Record<string, string> = {};
  given.forEach((hostPort, i) => {
    const host = experimental.splitHostPort(hostPort)?.host;
    if (host === undefined || isIP(host)) return;
    for (const address of resolved[i].addresses) {
      names[experimental.subchannelAddressToString(address)] = host;
    }
  });
  return names;
}
