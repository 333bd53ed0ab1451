// The client side of the conformance check (npm/conformance.ts), in plain
// JavaScript so that Node, Bun and Deno run the same file. It imports the
// balancer from the module named on its command line (the installed npm
// package, or balancer/mod.ts on Deno), reads one command per line on stdin
// and answers each with one JSON line on stdout:
//
//   pattern CHOOSE_SECOND N  a new channel; once both backends answered (or,
//                            for 0, the first), N more RPCs: {"servers": [...]}
//   config JSON              checkServiceConfig: {"ok": true} or {"error": "..."}
//   open                     a channel with health checking, kept, once the
//                            second backend answered: {"ok": true}
//   send N                   N RPCs on it: {"servers": [...]}
//   fail                     one RPC on it that should fail: {"code", "details"}
//   etcd PREFIX URL SECOND N [ACCESS]
//                            a channel to etcd:///PREFIX at etcd URL; once
//                            SECOND answered, N more RPCs: {"servers": [...]};
//                            ACCESS: base64 of {"ca", "cert", "key": PEM,
//                            "user": {"name", "password"}}, for etcd over TLS
//   xds BOOTSTRAP SECOND N   a channel to xds:///echo, its bootstrap the JSON
//                            BOOTSTRAP (no spaces); once SECOND answered, N
//                            more RPCs: {"servers": [...]}
//   ring N                   a channel through ring_hash_experimental, its key
//                            in x-user, to both backends; N keys, three
//                            rounds: {"keys": {KEY: [servers of its RPCs]}}
//   eject                    a channel with health checking under
//                            outlier_detection to the first and the failing
//                            backend, RPCs until 50 in a row succeed (at most
//                            10 s): {"failed": N, "last": [...]}
//
// Usage: RUNTIME conformance_client.mjs MODULE FIRST SECOND FAILING
import { Buffer } from "node:buffer";
import process from "node:process";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";

const [modulePath, first, second, failing] = process.argv.slice(-4);
const {
  checkServiceConfig,
  ETCD_ENDPOINTS,
  ManualResolver,
  registerCustomRoundRobin,
  registerEtcdResolver,
  registerRingHash,
  registerXds,
} = await import(modulePath);

registerCustomRoundRobin();
registerRingHash();

// EchoRequest and EchoResponse both hold one string, field 1.
const encode = ({ message }) => {
  const bytes = new TextEncoder().encode(message);
  return Buffer.from([0x0a, bytes.length, ...bytes]);
};
const decode = (buffer) => ({
  message: new TextDecoder().decode(buffer.subarray(2, 2 + buffer[1])),
});

let schemes = 0;

/** A client reaching both backends through the policy. */
function channel(chooseSecond, health) {
  return channelTo([first, second], {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond } }],
    ...(health ? { healthCheckConfig: { serviceName: "" } } : {}),
  });
}

/** A client reaching `endpoints` with `serviceConfig`. */
function channelTo(endpoints, serviceConfig) {
  const scheme = `conformance-${++schemes}`;
  new ManualResolver(scheme, { endpoints, serviceConfig }).register();
  return new grpc.Client(
    `${scheme}:///echo`,
    grpc.credentials.createInsecure(),
  );
}

/** One UnaryEcho: the address that answered, or the error. */
function echo(client, metadata = new grpc.Metadata()) {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      "/grpc.examples.echo.Echo/UnaryEcho",
      encode,
      decode,
      { message: "conformance" },
      metadata,
      { deadline: new Date(Date.now() + 5000) },
      (error, reply) =>
        resolve(
          error
            ? { error: { code: error.code, details: error.details } }
            : { server: reply.message.match(/\(from (.+)\)$/)[1] },
        ),
    )
  );
}

/** Sends RPCs until `address` answers one; false after 5 s. */
async function until(client, address) {
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    if ((await echo(client)).server === address) return true;
  }
  return false;
}

async function send(client, n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const { server, error } = await echo(client);
    servers.push(server ?? `ERROR ${error.code}: ${error.details}`);
  }
  return servers;
}

/** The etcd resolver's options from the `etcd` command's ACCESS. */
function etcdAccess(base64) {
  const { ca, cert, key, user } = JSON.parse(
    Buffer.from(base64, "base64").toString(),
  );
  const pem = (text) => new TextEncoder().encode(text);
  return { tls: { ca: pem(ca), cert: pem(cert), key: pem(key) }, user };
}

let kept = null;
// Once `secondAddress` answered on `client`, the servers of `n` more RPCs;
// the channel is closed either way.
async function patternOn(client, secondAddress, n) {
  try {
    if (!await until(client, secondAddress)) {
      const { error } = await echo(client);
      return {
        error: `the second backend did not answer within 5 s${
          error ? `: ${error.details}` : ""
        }`,
      };
    }
    return { servers: await send(client, n) };
  } finally {
    client.close();
  }
}

const commands = {
  async pattern(chooseSecond, n) {
    const client = channel(Number(chooseSecond), false);
    try {
      if (!await until(client, Number(chooseSecond) === 0 ? first : second)) {
        return { error: "no backend answered within 5 s" };
      }
      return { servers: await send(client, Number(n)) };
    } finally {
      client.close();
    }
  },
  config(...json) {
    try {
      checkServiceConfig(JSON.parse(json.join(" ")));
      return { ok: true };
    } catch (error) {
      return { error: error.message };
    }
  },
  async xds(bootstrap, secondAddress, n) {
    await registerXds();
    const client = new grpc.Client(
      "xds:///echo",
      grpc.credentials.createInsecure(),
      // grpc-js-xds's per-channel bootstrap, meant for tests.
      { "grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config": bootstrap },
    );
    return await patternOn(client, secondAddress, Number(n));
  },
  async etcd(prefix, url, secondAddress, n, access) {
    registerEtcdResolver(access === undefined ? {} : etcdAccess(access));
    const client = new grpc.Client(
      `etcd:///${prefix}`,
      grpc.credentials.createInsecure(),
      {
        [ETCD_ENDPOINTS]: url,
        "grpc.service_config": JSON.stringify({
          loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
        }),
      },
    );
    return await patternOn(client, secondAddress, Number(n));
  },
  async ring(n) {
    const client = channelTo([first, second], {
      loadBalancingConfig: [{
        ring_hash_experimental: { requestHashHeader: "x-user" },
      }],
    });
    const keys = {};
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < Number(n); i++) {
          const metadata = new grpc.Metadata();
          metadata.set("x-user", `key-${i}`);
          const { server, error } = await echo(client, metadata);
          (keys[`key-${i}`] ??= []).push(server ?? `ERROR ${error.details}`);
        }
      }
      return { keys };
    } finally {
      client.close();
    }
  },
  async open() {
    kept = channel(3, true);
    return (await until(kept, second))
      ? { ok: true }
      : { error: "the second backend did not answer within 5 s" };
  },
  async send(n) {
    return { servers: await send(kept, Number(n)) };
  },
  async fail() {
    const { server, error } = await echo(kept);
    return error ?? { error: `succeeded on ${server}` };
  },
  async eject() {
    const client = channelTo([first, failing], {
      loadBalancingConfig: [{
        outlier_detection: {
          interval: { seconds: 1, nanos: 0 },
          max_ejection_percent: 50,
          failure_percentage_ejection: { minimum_hosts: 2, request_volume: 10 },
          child_policy: [{ custom_round_robin: { chooseSecond: 3 } }],
        },
      }],
      healthCheckConfig: { serviceName: "" },
    });
    try {
      let failed = 0;
      const last = [];
      const end = Date.now() + 10_000;
      while (Date.now() < end && !(last.length === 50)) {
        const { server, error } = await echo(client);
        if (error) {
          failed++;
          last.length = 0;
        } else {
          last.push(server);
        }
      }
      return { failed, last };
    } finally {
      client.close();
    }
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const [name, ...args] = line.split(" ");
  console.log(JSON.stringify(await commands[name](...args)));
}
kept?.close();
