/**
 * A server's registration in etcd, for clients of `etcd:///PREFIX`: each
 * address under `PREFIX/ADDRESS`, in grpc-go's naming format, on a lease
 * that is kept alive. A server that dies without deregistering leaves its
 * keys only until the lease expires.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Etcd3, Lease } from "etcd3";
import { type EtcdAccess } from "../balancer/mod.ts";
import { connectEtcd, etcdKeyPrefix, etcdRefusal } from "../balancer/etcd.ts";

const TRACER = "etcd_registration";

/**
 * The key `address` is registered under: `PREFIX/ADDRESS`.
 *
 * @example The second server of `services/echo`
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   etcdKey("/services/echo", "10.0.0.7:50051"),
 *   "services/echo/10.0.0.7:50051",
 * );
 * ```
 */
export function etcdKey(prefix: string, address: string): string {
  return etcdKeyPrefix(prefix) + address;
}

/**
 * The value a server registers under `PREFIX/ADDRESS`: grpc-go's naming
 * `Endpoint`, `{"Addr": address, "Metadata": null}`.
 *
 * @example What `etcdctl put` would write
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   etcdEndpointValue("10.0.0.7:50051"),
 *   '{"Addr":"10.0.0.7:50051","Metadata":null}',
 * );
 * ```
 */
export function etcdEndpointValue(address: string): string {
  return JSON.stringify({ Addr: address, Metadata: null });
}

/** The lease's time to live when none is given, in seconds. */
export const DEFAULT_ETCD_TTL_SECONDS = 5;

/** How long a call to etcd may take before registering gives up on it. */
const CALL_MS = 3_000;

/**
 * How long a server tries to register at start: through an etcd election
 * (about a second), not through an etcd that is not there.
 */
const START_MS = 5_000;

/** What {@linkcode EtcdRegistration.start} registers, and where. */
export interface RegistrationOptions {
  /** The etcd cluster's client URLs. */
  readonly endpoints: readonly string[];
  /** The key prefix, the `PREFIX` of clients' `etcd:///PREFIX`. */
  readonly prefix: string;
  /** The addresses (`host:port`) to register, one key each. */
  readonly addresses: readonly string[];
  /** The lease's time to live (default {@linkcode DEFAULT_ETCD_TTL_SECONDS}). */
  readonly ttlSeconds?: number;
  /** TLS and the etcd user, who needs readwrite on the prefix. */
  readonly access?: EtcdAccess;
}

/**
 * Addresses registered in etcd on one lease, which is kept alive, and
 * granted again with the keys put again if etcd lets it expire (after an
 * outage longer than the TTL, say).
 *
 * @example Registering two servers, and deregistering them
 * ```ts
 * async function serve(): Promise<void> {
 *   const registration = await EtcdRegistration.start({
 *     endpoints: ["http://127.0.0.1:2379"],
 *     prefix: "services/echo",
 *     addresses: ["10.0.0.7:50050", "10.0.0.7:50051"],
 *   });
 *   // ... serve until asked to stop ...
 *   await registration.stop();
 * }
 * ```
 */
export class EtcdRegistration {
  readonly #client: Etcd3;
  readonly #options: RegistrationOptions;
  /** The lease the keys are on; `null` while it is granted again. */
  #lease: Lease | null = null;
  #stopped = false;

  private constructor(client: Etcd3, options: RegistrationOptions) {
    this.#client = client;
    this.#options = options;
  }

  /**
   * Registers `addresses`; resolves once every key is in etcd.
   *
   * @throws {Error} naming the cluster if etcd cannot be reached for 5 s,
   *   or at once if etcd refuses the user or its permission.
   */
  static async start(options: RegistrationOptions): Promise<EtcdRegistration> {
    const registration = new EtcdRegistration(
      await connectEtcd(options.endpoints, options.access),
      options,
    );
    const end = Date.now() + START_MS;
    try {
      for (;;) {
        try {
          await registration.#register();
          break;
        } catch (error) {
          if (Date.now() > end || registration.#refusal(error) !== null) {
            throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    } catch (error) {
      registration.#client.close();
      throw new Error(
        `cannot register in etcd at ${options.endpoints}: ${
          registration.#refusal(error) ?? (error as Error).message
        }`,
        { cause: error },
      );
    }
    return registration;
  }

  /** The keys registered, `PREFIX/ADDRESS` each. */
  get keys(): string[] {
    const { prefix, addresses } = this.#options;
    return addresses.map((address) => etcdKey(prefix, address));
  }

  /**
   * Deletes the keys, by revoking the lease, and lets etcd go. If etcd
   * cannot be reached, the keys go when the lease expires; that is logged.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    try {
      await this.#lease?.revoke({ deadline: Date.now() + CALL_MS });
    } catch (error) {
      grpc.experimental.log(
        grpc.logVerbosity.ERROR,
        `${TRACER}: cannot deregister (${
          (error as Error).message
        }); the keys go when their lease expires`,
      );
    } finally {
      this.#client.close();
    }
  }

  /** What etcd refused, if `error` is a refusal, which no retry mends. */
  #refusal(error: unknown): string | null {
    const { message } = error as Error;
    const said = etcdRefusal(
      error as Error,
      this.#options.access?.user,
      `write ${this.keys[0]}`,
    );
    return said === message ? null : said;
  }

  async #register(): Promise<void> {
    const { addresses, ttlSeconds = DEFAULT_ETCD_TTL_SECONDS } = this.#options;
    const lease = this.#client.lease(ttlSeconds);
    try {
      await Promise.all(
        this.keys.map((key, i) =>
          lease.put(key).value(etcdEndpointValue(addresses[i]))
            .options({ deadline: Date.now() + CALL_MS }).exec()
        ),
      );
    } catch (error) {
      lease.release();
      throw error;
    }
    // Stopped while registering again: these keys must go too.
    if (this.#stopped) {
      await lease.revoke({ deadline: Date.now() + CALL_MS }).catch(() => {});
      return;
    }
    lease.on("lost", (error) => {
      if (this.#stopped || this.#lease !== lease) return;
      grpc.experimental.log(
        grpc.logVerbosity.ERROR,
        `${TRACER}: lease lost (${error.message}); registering again`,
      );
      this.#lease = null;
      void this.#registerAgain();
    });
    this.#lease = lease;
  }

  /** Tries to register every second until it succeeds or is stopped. */
  async #registerAgain(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#register();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }
}
