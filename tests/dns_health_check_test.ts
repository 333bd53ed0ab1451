/**
 * The `dns` resolver wrapper (`registerDnsHealthCheckConfig`) against a real
 * DNS server on loopback: a TXT service config's `healthCheckConfig` is
 * handed on with the addresses, and the channel option that turns service
 * configs from DNS off turns it off. Each resolution runs in a process of
 * its own (testing/programs/dns_resolution.ts). Needs dnsmasq, not root.
 */
import assert from "node:assert/strict";
import {
  type DnsServer,
  dnsServerUnavailable,
  grpcConfig,
  withDnsServer,
} from "../testing/dns_server.ts";

const reason = await dnsServerUnavailable();
if (reason !== null) console.log(`DNS health-check test skipped: ${reason}`);

const NAME = "backends.test";
const SERVICE = "grpc.examples.echo.Echo";

/** What the wrapper hands on for `NAME` at `dns`, with channel `options`. */
async function resolve(
  dns: DnsServer,
  options: Record<string, unknown> = {},
  name = NAME,
): Promise<
  { authority: string; addresses: string[] | string; healthService?: unknown }
> {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: [
      "run",
      "-q",
      "--allow-net=127.0.0.1",
      "--allow-read=proto,node_modules",
      "--allow-sys=uid,gid",
      // Stryker's variable names the mutant under test in deno task mutation.
      "--allow-env=GRPC_*,__STRYKER_ACTIVE_MUTANT__",
      "testing/programs/dns_resolution.ts",
      `dns://${dns.address}/${name}:50051`,
      JSON.stringify(options),
    ],
    cwd: new URL("..", import.meta.url),
    env: { GRPC_NODE_USE_ALTERNATIVE_RESOLVER: "true" },
  }).output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  return JSON.parse(text.decode(stdout));
}

/** A TXT service config that turns health checking on for `SERVICE`. */
const HEALTH_CHECKED = grpcConfig({
  loadBalancingConfig: [{ custom_round_robin: {} }],
  healthCheckConfig: { serviceName: SERVICE },
});

Deno.test({
  name:
    "dns health check: an IP address target is not looked up in TXT, even where its name has a record",
  ignore: reason !== null,
  async fn() {
    await withDnsServer(async (dns) => {
      await dns.setTxt(
        "127.0.0.2",
        HEALTH_CHECKED,
      );
      assert.deepEqual(await resolve(dns, {}, "127.0.0.2"), {
        authority: "127.0.0.2:50051",
        addresses: ["127.0.0.2:50051"],
      });
    });
  },
});

Deno.test({
  name:
    "dns health check: a TXT healthCheckConfig is handed on with the addresses; without one, null; the channel option that turns DNS service configs off leaves it out",
  ignore: reason !== null,
  async fn() {
    await withDnsServer(async (dns) => {
      await dns.setHosts(NAME, ["127.0.0.2", "127.0.0.3"]);
      await dns.setTxt(
        NAME,
        HEALTH_CHECKED,
      );
      assert.deepEqual(await resolve(dns), {
        authority: `${NAME}:50051`,
        addresses: ["127.0.0.2:50051", "127.0.0.3:50051"],
        healthService: SERVICE,
      });
      assert.deepEqual(
        await resolve(dns, { "grpc.service_config_disable_resolution": 1 }),
        {
          authority: `${NAME}:50051`,
          addresses: ["127.0.0.2:50051", "127.0.0.3:50051"],
        },
      );
      await dns.setTxt(
        NAME,
        grpcConfig({ loadBalancingConfig: [{ custom_round_robin: {} }] }),
      );
      assert.deepEqual(await resolve(dns), {
        authority: `${NAME}:50051`,
        addresses: ["127.0.0.2:50051", "127.0.0.3:50051"],
        healthService: null,
      });
    });
  },
});
