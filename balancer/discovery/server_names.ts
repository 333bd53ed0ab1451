/**
 * The TLS name of each backend, which discovery knows and grpc-js does not:
 * a resolver hands it on as the {@linkcode SERVER_NAMES} attribute, and a
 * balancer's helper applies it with {@linkcode serverNamed} when it makes a
 * subchannel.
 *
 * @module
 */
import { type ChannelOptions, experimental } from "@grpc/grpc-js";

/**
 * The resolver attribute that names, per address (`host:port`, as
 * `subchannelAddressToString` writes it), the host name that a TLS
 * backend's certificate is verified against: the name the endpoint was
 * given by, where grpc-js alone would verify every endpoint against the
 * channel's target. Its prefix keeps it out of subchannel keys.
 *
 * @example What the manual resolver hands on for `localhost:50050`
 * ```ts
 * const attributes = { [SERVER_NAMES]: { "127.0.0.1:50050": "localhost" } };
 * ```
 */
export const SERVER_NAMES =
  `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.server_names`;

/**
 * `options` for a subchannel to `address`: with
 * `grpc.ssl_target_name_override` set to the address's name in
 * {@linkcode SERVER_NAMES}, when the resolver gave it one.
 *
 * @example The name the manual resolver gave an address
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const options = {
 *   [SERVER_NAMES]: { "127.0.0.1:50050": "localhost" },
 * };
 * assert.equal(
 *   serverNamed({ host: "127.0.0.1", port: 50050 }, options)[
 *     "grpc.ssl_target_name_override"
 *   ],
 *   "localhost",
 * );
 * ```
 */
export function serverNamed(
  address: experimental.SubchannelAddress,
  options: ChannelOptions,
): ChannelOptions {
  const names = options[SERVER_NAMES];
  if (names === undefined) return options;
  const name = names[experimental.subchannelAddressToString(address)];
  return typeof name === "string"
    ? { ...options, "grpc.ssl_target_name_override": name }
    : options;
}
