/**
 * The `etcd:` resolver in this process, driven as a channel drives it
 * (`experimental.createResolver`), against one real etcd: what it hands on
 * for the keys under its prefix, as they change, for bad targets and an
 * unreachable etcd, and nothing after `destroy`. Each step has a prefix of
 * its own, so one etcd serves them all: the one `CUSTOMLB_TEST_ETCD` names
 * (`deno task mutation` starts one for its whole run), else one started for
 * this file. Needs etcd and etcdctl; the 3-member cluster and the programs
 * are etcd_test.ts's.
 */
import assert from "node:assert/strict";
import { experimental, status } from "@grpc/grpc-js";
import {
  ETCD_ENDPOINTS,
  registerEtcdResolver,
} from "../balancer/discovery/etcd_resolver.ts";
import { connectEtcd } from "../balancer/discovery/etcd_naming.ts";
import { SERVER_NAMES } from "../balancer/discovery/server_names.ts";
import { etcdUnavailable, withEtcdCluster } from "../testing/etcd_cluster.ts";
import { LEAVES_ETCD_CLIENT_TIMERS } from "../testing/sanitizers.ts";
import { logged, until } from "../testing/wait.ts";

const reason = await etcdUnavailable();
if (reason !== null) console.log(`etcd resolver test skipped: ${reason}`);

/** One answer the resolver handed on. */
interface Answer {
  /** Each endpoint's addresses and hash key, or the error's code and text. */
  readonly endpoints:
    | { addresses: string[]; hashKey?: string }[]
    | { code: number; details: string };
  readonly attributes: { [key: string]: unknown };
}

/** `etcd://AUTHORITY/PATH` as grpc-js parses it. */
function uriOf(target: string): experimental.GrpcUri {
  const [, authority, path] = target.match(/^etcd:\/\/([^/]*)\/(.*)$/)!;
  return { scheme: "etcd", authority, path };
}

/**
 * A resolver of `target` and the answers it hands on; `made` counts the etcd
 * clients it has made and closed.
 */
function resolve(target: string, endpoint: string) {
  const answers: Answer[] = [];
  const made = { clients: 0, closed: 0 };
  registerEtcdResolver({
    connect: async (endpoints, access) => {
      const client = await connectEtcd(endpoints, access);
      made.clients++;
      const close = client.close.bind(client);
      client.close = () => {
        made.closed++;
        close();
      };
      return client;
    },
  });
  const resolver = experimental.createResolver(uriOf(target), (
    endpoints,
    attributes,
  ) => {
    answers.push({
      endpoints: endpoints.ok
        ? endpoints.value.map((endpoint) => {
          const { hashKey } = endpoint as { hashKey?: string };
          return {
            addresses: endpoint.addresses.map(
              experimental.subchannelAddressToString,
            ),
            ...(hashKey === undefined ? {} : { hashKey }),
          };
        })
        : { code: endpoints.error.code, details: endpoints.error.details },
      attributes,
    });
    return true;
  }, { [ETCD_ENDPOINTS]: endpoint });
  resolver.updateResolution();
  return { resolver, answers, made };
}

/** Runs etcdctl against `endpoint`. */
async function etcdctl(endpoint: string, ...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, ...args],
    stdout: "null",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

const value = (addr: string, metadata?: object) =>
  JSON.stringify({ Addr: addr, ...(metadata ? { Metadata: metadata } : {}) });

/** A prefix no other step uses. */
const prefix = () => `resolver-test/${crypto.randomUUID()}`;

async function keysAndChanges(endpoint: string) {
  const at = prefix();
  await etcdctl(endpoint, "put", `${at}/b`, value("127.0.0.1:2002"));
  await etcdctl(
    endpoint,
    "put",
    `${at}/a`,
    value("localhost:2001", { hashKey: "user-a" }),
  );
  await etcdctl(endpoint, "put", `${at}/c`, "not json");
  const { resolver, answers, made } = resolve(`etcd:///${at}`, endpoint);
  try {
    const lines = await logged(() =>
      until("the first answer", () => answers.length === 1)
    );
    assert.deepEqual(lines, [
      `etcd_resolver: skipping ${at}/c: value is not JSON: "not json"`,
    ]);
    // Asked again while its watch is up, it has nothing to do.
    for (let i = 0; i < 3; i++) resolver.updateResolution();
    // In key order; a bad value skipped; a name resolved, and named for TLS.
    const [named] = answers[0].endpoints as { addresses: string[] }[];
    assert.deepEqual(answers[0].endpoints, [
      { addresses: named.addresses, hashKey: "user-a" },
      { addresses: ["127.0.0.1:2002"] },
    ]);
    assert.ok(named.addresses.length > 0);
    assert.deepEqual(
      answers[0].attributes[SERVER_NAMES],
      Object.fromEntries(named.addresses.map((a) => [a, "localhost"])),
    );
    await etcdctl(endpoint, "put", `${at}/d`, value("127.0.0.1:2004"));
    await until("an answer with d", () => answers.length === 2);
    assert.deepEqual(answers[1].endpoints, [
      { addresses: named.addresses, hashKey: "user-a" },
      { addresses: ["127.0.0.1:2002"] },
      { addresses: ["127.0.0.1:2004"] },
    ]);
    await etcdctl(endpoint, "del", `${at}/b`);
    await until("an answer without b", () => answers.length === 3);
    assert.equal((answers[2].endpoints as unknown[]).length, 2);
    // Key order, not the order of arrival.
    await etcdctl(endpoint, "put", `${at}/0`, value("127.0.0.1:2000"));
    await until("an answer with 0", () => answers.length === 4);
    assert.deepEqual(
      (answers[3].endpoints as { addresses: string[] }[])[0],
      { addresses: ["127.0.0.1:2000"] },
    );
    await etcdctl(endpoint, "del", `${at}/0`);
    await until("an answer without 0", () => answers.length === 5);
    // A valid value put over a bad one counts; a bad one over a good one
    // takes it out.
    await etcdctl(endpoint, "put", `${at}/c`, value("127.0.0.1:2003"));
    await until("an answer with c", () => answers.length === 6);
    await etcdctl(endpoint, "put", `${at}/d`, "{}");
    await until("an answer without d", () => answers.length === 7);
    assert.deepEqual(
      (answers[6].endpoints as { addresses: string[] }[]).slice(1),
      [{ addresses: ["127.0.0.1:2003"] }],
    );
    assert.equal(made.clients, 1, "one etcd client per resolver");
  } finally {
    resolver.destroy();
  }
  await until("its client closed", () => made.closed === 1);
  const seen = answers.length;
  await etcdctl(endpoint, "put", `${at}/e`, value("127.0.0.1:2005"));
  // The put is in etcd; a watch still up would have had it by the time
  // etcdctl returned and this second put is made.
  await etcdctl(endpoint, "put", `${at}/f`, value("127.0.0.1:2006"));
  assert.equal(answers.length, seen, "nothing handed on after destroy");
}

async function startsAndStops(endpoint: string) {
  // Asked twice before its first answer: one client, one watch.
  const twice = resolve(`etcd:///${prefix()}`, endpoint);
  twice.resolver.updateResolution();
  try {
    await until("an answer", () => twice.answers.length === 1);
    assert.equal(twice.made.clients, 1);
  } finally {
    twice.resolver.destroy();
  }
  // Destroyed before its client is made: the client is closed when it is.
  const early = resolve(`etcd:///${prefix()}`, endpoint);
  early.resolver.destroy();
  await until("a client made", () => early.made.clients === 1);
  await until("and closed", () => early.made.closed === 1);
  assert.equal(early.answers.length, 0);
}

async function emptyPrefix(endpoint: string) {
  const { resolver, answers } = resolve(`etcd:///${prefix()}`, endpoint);
  try {
    await until("an answer", () => answers.length === 1);
    assert.deepEqual(answers[0].endpoints, []);
  } finally {
    resolver.destroy();
  }
}

async function badTargets(endpoint: string) {
  const cases: [string, string, string][] = [
    [
      "etcd://127.0.0.1:2379/services/echo",
      endpoint,
      `etcd resolver: give the cluster by the ${ETCD_ENDPOINTS} option, not in the target ("127.0.0.1:2379")`,
    ],
    [
      "etcd:///",
      endpoint,
      "etcd resolver: the target needs a prefix: etcd:///PREFIX",
    ],
    [
      "etcd:///x",
      "ftp://127.0.0.1:2379",
      'etcd resolver: etcd endpoints must be http://HOST:PORT or https://HOST:PORT URLs, got "ftp://127.0.0.1:2379"',
    ],
  ];
  for (const [target, option, details] of cases) {
    const { resolver, answers, made } = resolve(target, option);
    try {
      await until(`an answer for ${target}`, () => answers.length === 1);
      const error = answers[0].endpoints as { code: number; details: string };
      assert.equal(error.code, status.UNAVAILABLE, target);
      assert.equal(error.details, details);
      assert.equal(made.clients, 0, "no client for a bad target");
    } finally {
      resolver.destroy();
    }
  }
  // The :authority of HTTP/2 may hold no "/": the prefix's last segment.
  const { resolver } = resolve("etcd:///services/echo", endpoint);
  resolver.destroy();
  const resolverClass = resolver.constructor as unknown as {
    getDefaultAuthority(uri: experimental.GrpcUri): string;
  };
  for (
    const [path, authority] of [
      ["services/echo", "echo"],
      ["a/b/echo/", "echo"],
      ["", "etcd"],
    ]
  ) {
    assert.equal(
      resolverClass.getDefaultAuthority({ scheme: "etcd", path }),
      authority,
      path,
    );
  }
}

async function unreachable() {
  const at = prefix();
  // Port 1 on loopback: refused at once.
  const { resolver, answers } = resolve(`etcd:///${at}`, "http://127.0.0.1:1");
  try {
    await until("an answer", () => answers.length === 1, 30_000);
    const error = answers[0].endpoints as { code: number; details: string };
    assert.equal(error.code, status.UNAVAILABLE);
    assert.ok(
      error.details.startsWith(
        `etcd resolver: cannot read ${at}/ from etcd at http://127.0.0.1:1: `,
      ),
      error.details,
    );
  } finally {
    resolver.destroy();
  }
}

async function steps(t: Deno.TestContext, endpoint: string) {
  await t.step(
    "keys, changes, bad values, and nothing after destroy",
    () => keysAndChanges(endpoint),
  );
  await t.step(
    "asked twice at once, one client; destroyed at once, closed",
    () => startsAndStops(endpoint),
  );
  await t.step("an empty prefix: no endpoints", () => emptyPrefix(endpoint));
  await t.step(
    "bad targets and options: an error naming what",
    () => badTargets(endpoint),
  );
  await t.step(
    "etcd unreachable: an error naming the prefix and etcd",
    () => unreachable(),
  );
}

Deno.test({
  name: "etcd resolver: in-process against one etcd",
  ignore: reason !== null,
  ...LEAVES_ETCD_CLIENT_TIMERS,
  async fn(t) {
    const shared = Deno.env.get("CUSTOMLB_TEST_ETCD");
    if (shared !== undefined) return await steps(t, shared);
    await withEtcdCluster(1, (cluster) => steps(t, cluster.endpoints[0]));
  },
});
