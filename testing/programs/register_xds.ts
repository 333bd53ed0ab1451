/**
 * Calls `registerXds()` and prints, as JSON, the message of what it throws
 * (`null` if nothing): run with an import map that lacks
 * `@grpc/grpc-js-xds`, it shows what a user without the package sees.
 *
 * @module
 */
import { registerXds } from "../../balancer/discovery/xds.ts";

let message: string | null = null;
try {
  await registerXds();
} catch (error) {
  message = (error as Error).message;
}
console.log(JSON.stringify(message));
