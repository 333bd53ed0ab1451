/**
 * The `@grpc/grpc-js` versions the balancer is tested on (`deno task
 * test:compat` runs its tests on the two ends of the range, each pinned in
 * `compat/`): the npm package's peer range.
 *
 * @module
 */

/** The npm peer range of `@grpc/grpc-js`. */
export const GRPC_JS_RANGE = ">=1.14.0 <1.15.0";
