/**
 * etcd naming without an etcd: the client URLs a user may write, the key
 * prefix, a registered value, what etcd refused, and the TLS settings
 * `connectEtcd` refuses before it dials.
 */
import assert from "node:assert/strict";
import {
  connectEtcd,
  etcdEndpointsUseTls,
  etcdKeyPrefix,
  etcdRefusal,
  etcdValue,
  parseEtcdEndpoints,
} from "../balancer/discovery/etcd_naming.ts";
import { notInstalled } from "../testing/installed.ts";

const NOT_A_URL = /must be http:\/\/HOST:PORT or https:\/\/HOST:PORT URLs/;

const noBun = await notInstalled(
  "bun",
  ["--version"],
  "bun is not installed (.ci/run installs it)",
);
if (noBun !== null) console.log(`etcd naming on Bun skipped: ${noBun}`);

Deno.test("etcd naming: client URLs are trimmed and kept in order, of one scheme", () => {
  assert.deepEqual(parseEtcdEndpoints(" http://a:1 ,http://[::1]:2"), [
    "http://a:1",
    "http://[::1]:2",
  ]);
  assert.deepEqual(parseEtcdEndpoints("https://etcd-0:2379"), [
    "https://etcd-0:2379",
  ]);
  assert.throws(
    () => parseEtcdEndpoints("http://a:1,https://b:2"),
    /^Error: etcd endpoints mix http:\/\/ and https:\/\/ URLs \(http:\/\/a:1,https:\/\/b:2\): give one scheme for all$/,
  );
});

Deno.test("etcd naming: a URL without a port, with a path, a query, a trailing slash or another scheme is refused, quoted", () => {
  for (
    const bad of [
      "",
      "a:1",
      "http://a",
      "http://a:1/",
      "http://a:1/v3",
      "http://a:1?x=1",
      "ftp://a:1",
      "http://user@a:1",
    ]
  ) {
    assert.throws(
      () => parseEtcdEndpoints(`http://ok:1,${bad}`),
      (error: Error) =>
        NOT_A_URL.test(error.message) && error.message.endsWith(`got "${bad}"`),
      bad,
    );
  }
});

Deno.test("etcd naming: on Deno an https:// URL by IP address is refused saying why; by name it is taken", () => {
  for (const url of ["https://127.0.0.1:2379", "https://[::1]:2379"]) {
    assert.throws(
      () => parseEtcdEndpoints(url),
      new RegExp(
        `^Error: etcd endpoint ${
          url.replace(/[[\].]/g, "\\$&")
        }: over TLS .* Deno's node:tls refuses an IP address there`,
      ),
    );
  }
  assert.deepEqual(parseEtcdEndpoints("http://127.0.0.1:2379"), [
    "http://127.0.0.1:2379",
  ]);
});

/** What `parseEtcdEndpoints(text)` gives on Bun. */
async function onBun(
  text: string,
): Promise<{ urls?: string[]; error?: string }> {
  const { code, stdout, stderr } = await new Deno.Command("bun", {
    args: ["testing/programs/etcd_endpoints.ts", text],
    cwd: new URL("..", import.meta.url),
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout));
}

Deno.test({
  name:
    "etcd naming: on Bun too an https:// URL by IP address is refused, naming Bun; by name it is taken",
  ignore: noBun !== null,
  async fn() {
    for (const url of ["https://127.0.0.1:2379", "https://[::1]:2379"]) {
      const { error } = await onBun(url);
      assert.match(
        error ?? "",
        /: over TLS .* Bun's node:tls refuses an IP address there/,
        url,
      );
    }
    assert.deepEqual(await onBun("https://localhost:2379"), {
      urls: ["https://localhost:2379"],
    });
  },
});

Deno.test("etcd naming: TLS is the scheme of the URLs; none is no TLS", () => {
  assert.equal(etcdEndpointsUseTls(["https://a:1", "https://b:1"]), true);
  assert.equal(etcdEndpointsUseTls(["http://a:1"]), false);
  assert.equal(etcdEndpointsUseTls([]), false);
});

Deno.test("etcd naming: the key prefix drops slashes at either end, not inside", () => {
  assert.equal(etcdKeyPrefix("echo"), "echo/");
  assert.equal(etcdKeyPrefix("//a//b//"), "a//b/");
  assert.equal(etcdKeyPrefix("///"), "/");
  assert.equal(etcdKeyPrefix(""), "/");
});

Deno.test("etcd naming: a value's Addr must be HOST:PORT in JSON, each mistake said", () => {
  assert.equal(
    etcdValue('{"Addr":"10.0.0.7:50051","Metadata":null}').address,
    "10.0.0.7:50051",
  );
  assert.deepEqual(etcdValue('{"Addr":"[::1]:5"}'), {
    address: "[::1]:5",
    hashKey: undefined,
  });
  assert.deepEqual(
    etcdValue('{"Addr":"10.0.0.7:1","Metadata":{"hashKey":"echo-0"}}'),
    { address: "10.0.0.7:1", hashKey: "echo-0" },
  );
  assert.equal(
    etcdValue('{"Addr":"10.0.0.7:1","Metadata":{"hashKey":7}}').hashKey,
    undefined,
  );
  assert.throws(
    () => etcdValue("10.0.0.7:50051"),
    /^Error: value is not JSON: "10.0.0.7:50051"$/,
  );
  for (const value of ["null", "{}", '{"Addr":7}', '{"Addr":"10.0.0.7"}']) {
    assert.throws(
      () => etcdValue(value),
      new RegExp(`^Error: "Addr" is not HOST:PORT in ${value}$`),
    );
  }
});

Deno.test("etcd naming: a refusal names the user and what was asked; another error keeps its message", () => {
  const reader = { name: "reader", password: "x" };
  const denied = new Error(
    "7 PERMISSION_DENIED: etcdserver: permission denied",
  );
  assert.equal(
    etcdRefusal(denied, reader, "read echo/"),
    'etcd user "reader" may not read echo/',
  );
  assert.equal(
    etcdRefusal(denied, undefined, "read echo/"),
    "etcd refused to read echo/ without a user: its auth is enabled",
  );
  assert.equal(
    etcdRefusal(
      new Error("3 INVALID_ARGUMENT: etcdserver: authentication failed"),
      reader,
      "read echo/",
    ),
    'etcd refused user "reader": wrong user name or password',
  );
  assert.equal(
    etcdRefusal(new Error("14 UNAVAILABLE: no connection"), reader, "read"),
    "14 UNAVAILABLE: no connection",
  );
});

Deno.test("etcd naming: TLS settings with http:// URLs, and a certificate without its key, are refused before dialling", async () => {
  const pem = new TextEncoder().encode("PEM");
  await assert.rejects(
    connectEtcd(["http://127.0.0.1:1"], { tls: {} }),
    /^Error: etcd TLS settings need https:\/\/ URLs, got http:\/\/127.0.0.1:1$/,
  );
  for (const tls of [{ cert: pem }, { key: pem }]) {
    await assert.rejects(
      connectEtcd(["https://etcd:1"], { tls }),
      /^Error: an etcd client certificate needs its key, and the reverse$/,
    );
  }
});

Deno.test("etcd naming: http:// URLs with no TLS settings, with a user or without, make a client, which dials only when used", async () => {
  const cases: Parameters<typeof connectEtcd>[1][] = [
    {},
    { user: { name: "reader", password: "p" } },
  ];
  for (const access of cases) {
    const url = "http://127.0.0.1:1";
    const client = await connectEtcd([url], access);
    client.close();
  }
});
