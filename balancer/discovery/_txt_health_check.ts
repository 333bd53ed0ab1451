/**
 * Internal: the logic of the `dns` resolver's wrapper (`dns_resolver.ts`),
 * apart from grpc-js's resolver, so that tests drive it with stubs.
 *
 * @module
 */
import { hostname } from "node:os";
import { experimental, logVerbosity as LogVerbosity } from "@grpc/grpc-js";
import {
  HEALTH_CHECK_SERVICE_NAME,
  healthCheckServiceFromConfig,
} from "../health_check.ts";

type ResolverListener = experimental.ResolverListener;

/**
 * What a TXT record says of health checking: a service name, `null` for a
 * service config without one (health checking off), or `undefined` for no
 * service config at all (the channel's default config applies).
 */
export type HealthCheck = string | null | undefined;

const TRACER = "dns_health_check";

function trace(text: string): void {
  experimental.trace(LogVerbosity.DEBUG, TRACER, text);
}

/**
 * Picks the service config a `grpc_config` TXT record holds for this client,
 * as grpc-js does: the first choice whose `percentage`, `clientHostname` and
 * `clientLanguage` (`node`) all match, and reads its health-check service
 * name. `percentage` is drawn once per resolver, as grpc-js draws its own.
 *
 * @throws {Error} for a record that is not a valid choice list.
 */
export function healthCheckFromTxt(
  records: readonly (readonly string[])[],
  percentage: number,
): HealthCheck {
  const record = records.find((strings) =>
    strings[0]?.startsWith("grpc_config=")
  );
  if (record === undefined) return undefined;
  const choices = JSON.parse(record.join("").slice("grpc_config=".length));
  if (!Array.isArray(choices)) throw new Error("grpc_config is not a list");
  const chosen = choices.find((choice) =>
    (typeof choice.percentage !== "number" ||
      percentage <= choice.percentage) &&
    (!Array.isArray(choice.clientHostname) ||
      choice.clientHostname.includes(hostname())) &&
    (!Array.isArray(choice.clientLanguage) ||
      choice.clientLanguage.includes("node"))
  );
  if (chosen === undefined) return undefined;
  return healthCheckServiceFromConfig(chosen.serviceConfig);
}

/**
 * The wrapper's logic, around any resolver: it hands on every resolution of
 * the `inner` one, with the health-check service name that `lookup` last
 * found in TXT. Tests drive it with a stub of each.
 */
export class TxtHealthCheckResolver implements experimental.Resolver {
  readonly #inner: experimental.Resolver;
  readonly #listener: ResolverListener;
  readonly #lookup: (() => Promise<string[][]>) | null;
  readonly #percentage = Math.random() * 100;
  #healthCheck: HealthCheck = undefined;
  /** The inner resolver's last resolution, to hand on again on a change. */
  #last: Parameters<ResolverListener> | null = null;
  #looking = false;
  #destroyed = false;

  /**
   * @param listener The channel's listener.
   * @param inner Makes the resolver of addresses, given the listener it
   *   must call.
   * @param lookup The TXT lookup, or `null` where there is none (an IP
   *   address, or service configs from DNS turned off).
   */
  constructor(
    listener: ResolverListener,
    inner: (listener: ResolverListener) => experimental.Resolver,
    lookup: (() => Promise<string[][]>) | null,
  ) {
    this.#listener = listener;
    this.#lookup = lookup;
    this.#inner = inner((...resolution) => {
      this.#last = resolution;
      // Looked up after each of the inner resolutions, so as often as
      // grpc-js's rate limit lets it resolve, and no more.
      this.#lookUpHealthCheck();
      return this.#handOn(...resolution);
    });
  }

  /** Asks the inner resolver to resolve again. */
  updateResolution(): void {
    this.#inner.updateResolution();
  }

  /** Stops both resolving and handing on. */
  destroy(): void {
    this.#destroyed = true;
    this.#inner.destroy();
  }

  #lookUpHealthCheck(): void {
    if (this.#lookup === null || this.#looking) return;
    this.#looking = true;
    this.#lookup().then(
      (records) =>
        this.#setHealthCheck(healthCheckFromTxt(records, this.#percentage)),
      // No TXT record, or none reachable: as grpc-js, keep the last.
      (error) => trace(`no TXT record: ${error.message}`),
    ).catch((error) =>
      experimental.log(
        LogVerbosity.ERROR,
        `${TRACER}: TXT service config: ${error.message}`,
      )
    ).finally(() => this.#looking = false);
  }

  #setHealthCheck(healthCheck: HealthCheck): void {
    if (healthCheck === this.#healthCheck || this.#destroyed) return;
    trace(`health check service from TXT: ${healthCheck}`);
    this.#healthCheck = healthCheck;
    if (this.#last !== null) this.#handOn(...this.#last);
  }

  #handOn(
    ...[endpoints, attributes, serviceConfig, note]: Parameters<
      ResolverListener
    >
  ): boolean {
    return this.#listener(
      endpoints,
      this.#healthCheck === undefined
        ? attributes
        : { ...attributes, [HEALTH_CHECK_SERVICE_NAME]: this.#healthCheck },
      serviceConfig,
      note,
    );
  }
}
