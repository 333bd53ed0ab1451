/**
 * The TLS names a resolver hands on (`balancer/discovery/server_names.ts`):
 * the subchannel option each address gets from them, and the attribute's
 * key, which grpc-js must leave out of its subchannel pool's key.
 */
import assert from "node:assert/strict";
import { experimental } from "@grpc/grpc-js";
import {
  SERVER_NAMES,
  serverNamed,
} from "../balancer/discovery/server_names.ts";

const ADDRESS = { host: "127.0.0.1", port: 50051 };

Deno.test("server names: an address named by the resolver gets its name as the TLS target name; the other options stay", () => {
  const options = {
    [SERVER_NAMES]: { "127.0.0.1:50051": "backend.test" },
    "grpc.keepalive_time_ms": 1000,
  };
  assert.deepEqual(serverNamed(ADDRESS, options), {
    ...options,
    "grpc.ssl_target_name_override": "backend.test",
  });
});

Deno.test("server names: an address without a name, or no names at all, leaves the options as they are", () => {
  const unnamed = { [SERVER_NAMES]: { "127.0.0.1:50050": "other.test" } };
  assert.equal(serverNamed(ADDRESS, unnamed), unnamed);
  const none = { "grpc.keepalive_time_ms": 1000 };
  assert.equal(serverNamed(ADDRESS, none), none);
  const notText = { [SERVER_NAMES]: { "127.0.0.1:50051": 7 } };
  assert.equal(serverNamed(ADDRESS, notText), notText);
});

Deno.test("server names: the attribute's key is one grpc-js leaves out of its subchannel pool's key", () => {
  assert.ok(
    SERVER_NAMES.startsWith(
      `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.`,
    ),
    SERVER_NAMES,
  );
  assert.ok(SERVER_NAMES.length > 0);
  assert.notEqual(
    SERVER_NAMES,
    experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX,
  );
});
