/**
 * `parseEtcdEndpoints` of its argument on the runtime that runs it (Deno,
 * Node or Bun: it imports nothing Deno-only), printed as one JSON line:
 * `{"urls": [...]}` or `{"error": "..."}`.
 *
 * ```sh
 * bun testing/programs/etcd_endpoints.ts https://127.0.0.1:2379
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseEtcdEndpoints } from "../../balancer/discovery/etcd_naming.ts";

try {
  console.log(JSON.stringify({ urls: parseEtcdEndpoints(process.argv[2]) }));
} catch (error) {
  console.log(JSON.stringify({ error: (error as Error).message }));
}
