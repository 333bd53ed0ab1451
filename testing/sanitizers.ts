/**
 * The sanitizer opt-outs a test may take, one per handle that outlives a test
 * by grpc-js's design rather than by a bug of ours. `deno.json` turns Deno's
 * ops and resources sanitizers on for the whole suite; a test that takes one
 * of these turns both off (Deno counts a timer under both).
 *
 * @module
 */

/**
 * pick_first arms a 250 ms Happy Eyeballs timer (unref'd) while its
 * subchannel connects; reaching READY clears it, but `destroy()` does not.
 * A test whose child is still connecting, or connected but not yet healthy,
 * when it ends leaves that timer running.
 */
export const LEAVES_PICK_FIRST_TIMER = {
  sanitizeOps: false,
  sanitizeResources: false,
} as const;

/**
 * A subchannel that failed to connect runs a backoff timer (unref'd, 1 s and
 * up), which closing its channel does not stop: grpc-js only moves CONNECTING
 * and READY subchannels to IDLE when their last reference goes. A test that
 * stops a server its channel was connected to leaves that timer running, and
 * often pick_first's, armed as the child reconnects.
 */
export const LEAVES_RECONNECT_TIMERS = {
  sanitizeOps: false,
  sanitizeResources: false,
} as const;

/**
 * grpc-js-xds's client outlives the channels it serves: closing them leaves
 * its ADS stream's backoff timer, the idle timers of its own channel to the
 * control plane, and the global subchannel pool's cleanup interval.
 */
export const LEAVES_XDS_CLIENT = {
  sanitizeOps: false,
  sanitizeResources: false,
} as const;

/**
 * The etcd3 package's client leaves timers behind when it is closed: its
 * watch manager arms a reconnect timer (its backoff) when the watch stream
 * that closing ended reports the end, and its grpc-js channel to an etcd
 * that refused it keeps that subchannel's backoff timer, as
 * {@linkcode LEAVES_RECONNECT_TIMERS} says.
 */
export const LEAVES_ETCD_CLIENT_TIMERS = {
  sanitizeOps: false,
  sanitizeResources: false,
} as const;
