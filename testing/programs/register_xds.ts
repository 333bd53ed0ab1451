/**
 * Calls `registerXds()` and prints, as JSON, the message of what it throws
 * and whether it keeps its cause (`null` if nothing): run with an import
 * map that lacks
 * `@grpc/grpc-js-xds`, it shows what a user without the package sees.
 *
 * @module
 */
import { registerXds } from "../../balancer/discovery/xds.ts";

let thrown: { message: string; cause: boolean } | null = null;
try {
  await registerXds();
} catch (error) {
  const { message, cause } = error as Error;
  thrown = { message, cause: cause !== undefined };
}
console.log(JSON.stringify(thrown));
