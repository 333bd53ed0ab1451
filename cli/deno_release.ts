/**
 * The one Deno release this project is pinned to, and the releases known to
 * crash its servers (docs/known_issues.md), with the warning a server prints
 * on those.
 *
 * @module
 */

/**
 * The Deno release this project is tested on, the one `.ci/run` reads from
 * this line and installs.
 */
export const PINNED_DENO = "2.9.3";

/**
 * Releases whose `node:http2` server aborts inside nghttp2 when a client
 * that has just sent thousands of RPCs closes its channel
 * (denoland/deno#36788): every server of the process goes with it.
 */
const CRASHING_DENO = new Set(["2.9.4", "2.9.5", "2.9.6"]);

/**
 * The line a server prints on stderr at start on a Deno release known to
 * crash under busy clients, or `null` on any other release.
 *
 * @example Checking the running release
 * ```ts
 * import { releaseWarning } from "./deno_release.ts";
 *
 * const warning = releaseWarning(Deno.version.deno);
 * if (warning !== null) console.error(warning);
 * ```
 */
export function releaseWarning(version: string): string | null {
  return CRASHING_DENO.has(version)
    ? `server: warning: Deno ${version} can abort this server when a busy ` +
      `client closes (denoland/deno#36788); use Deno ${PINNED_DENO}`
    : null;
}
