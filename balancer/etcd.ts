/**
 * For programs that write backends to etcd, where the `etcd:` resolver
 * (`registerEtcdResolver` in the package's main entry) reads them: the key
 * format, and a client connected as the resolver connects. A backend
 * registers itself under `etcdKeyPrefix(prefix)` with a value in grpc-go's
 * naming format (`{"Op":0,"Addr":"host:port"}`), on a lease that ends with
 * it.
 *
 * @example A backend's key and its client
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(etcdKeyPrefix("echo"), "echo/");
 * assert.deepEqual(parseEtcdEndpoints(DEFAULT_ETCD_ENDPOINTS), [
 *   "http://127.0.0.1:2379",
 * ]);
 * ```
 *
 * @module
 */
export {
  connectEtcd,
  DEFAULT_ETCD_ENDPOINTS,
  type EtcdAccess,
  etcdEndpointsUseTls,
  etcdKeyPrefix,
  etcdRefusal,
  parseEtcdEndpoints,
} from "./discovery/etcd_naming.ts";
