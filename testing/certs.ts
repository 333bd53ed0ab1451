/**
 * Certificates made at test time with openssl, in a folder of `certs/`
 * (where the tasks may read): a CA, a server certificate for `localhost`,
 * and the bad ones the TLS tests need.
 *
 * @module
 */
import { isIP } from "node:net";
import { notInstalled } from "./installed.ts";

const ROOT = new URL("..", import.meta.url);

/** Why certificates cannot be made here, or `null` if they can. */
export function opensslUnavailable(): Promise<string | null> {
  return notInstalled(
    "openssl",
    ["version"],
    "openssl is not installed (.ci/run installs it)",
  );
}

/** The files of one test run, each a path relative to the project. */
export interface Certs {
  readonly dir: string;
  /** The CA that signed the rest. */
  readonly ca: string;
  /** Another CA, that signed nothing here. */
  readonly otherCa: string;
  /** For `localhost` and `names` (host names or IP addresses), with its key. */
  readonly server: { cert: string; key: string };
  /** For `localhost`, expired. */
  readonly expired: { cert: string; key: string };
  /** For `localhost`, valid only from 2099. */
  readonly notYetValid: { cert: string; key: string };
  /** For `other.test` only. */
  readonly otherName: { cert: string; key: string };
  /** A client certificate, for mutual TLS. */
  readonly client: { cert: string; key: string };
  remove(): Promise<void>;
}

/** A new P-256 key, unencrypted. */
const NEW_KEY = [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
];

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(stderr)}`);
  }
}

/**
 * `openssl ca`'s settings, for the one certificate whose start date is set:
 * `openssl x509` (3.0) can only start a certificate now.
 */
const CA_CONFIG = `[ca]
default_ca = test
[test]
database = index.txt
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
serial = ca.srl
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
`;

/** `name`, a host name or an IP address, as a subjectAltName entry. */
function subjectAltName(name: string): string {
  return `${isIP(name) === 0 ? "DNS" : "IP"}:${name}`;
}

/**
 * Makes a fresh set of certificates; the server's names `localhost` and
 * `names`, each a host name or an IP address.
 */
export async function makeCerts(names: readonly string[] = []): Promise<Certs> {
  const dir = `certs/test-${crypto.randomUUID().slice(0, 8)}`;
  const cwd = new URL(`${dir}/`, ROOT).pathname;
  await Deno.mkdir(cwd, { recursive: true });
  const ca = async (name: string) =>
    await openssl(
      cwd,
      ...["req", "-x509", ...NEW_KEY, "-keyout", `${name}.key`],
      ...["-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`],
    );
  const signed = async (name: string, san: string, days: string) => {
    await openssl(
      cwd,
      ...["req", ...NEW_KEY, "-keyout", `${name}.key`],
      ...["-out", `${name}.csr`, "-subj", `/CN=${name}`],
    );
    await Deno.writeTextFile(`${cwd}${name}.ext`, `subjectAltName=${san}\n`);
    await openssl(
      cwd,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      days,
      "-extfile",
      `${name}.ext`,
    );
    return { cert: `${dir}/${name}.pem`, key: `${dir}/${name}.key` };
  };
  await ca("ca");
  await ca("other-ca");
  const server = await signed(
    "server",
    ["localhost", ...names].map(subjectAltName).join(","),
    "2",
  );
  // -1 day: it expired a day before it was made.
  const expired = await signed("expired", "DNS:localhost", "-1");
  const otherName = await signed("other", "DNS:other.test", "2");
  const client = await signed("client", "DNS:client", "2");
  return {
    dir,
    ca: `${dir}/ca.pem`,
    otherCa: `${dir}/other-ca.pem`,
    server,
    expired,
    notYetValid: await future(cwd, dir),
    otherName,
    client,
    remove: () => Deno.remove(cwd, { recursive: true }),
  };
}

/** A `localhost` certificate signed by `ca.pem`, valid only in 2099. */
async function future(
  cwd: string,
  dir: string,
): Promise<{ cert: string; key: string }> {
  await Deno.writeTextFile(`${cwd}ca.cnf`, CA_CONFIG);
  await Deno.writeTextFile(`${cwd}index.txt`, "");
  await openssl(
    cwd,
    ...["req", ...NEW_KEY, "-keyout", "future.key", "-out", "future.csr"],
    ...["-subj", "/CN=future", "-addext", "subjectAltName=DNS:localhost"],
  );
  await openssl(
    cwd,
    ...["ca", "-batch", "-config", "ca.cnf", "-in", "future.csr"],
    ...["-out", "future.pem", "-notext"],
    ...["-startdate", "20990101000000Z", "-enddate", "20991231000000Z"],
  );
  return { cert: `${dir}/future.pem`, key: `${dir}/future.key` };
}

/** Runs `body` with a fresh set of certificates, removed afterwards. */
export async function withCerts(
  body: (certs: Certs) => Promise<void>,
): Promise<void> {
  const certs = await makeCerts();
  try {
    await body(certs);
  } finally {
    await certs.remove();
  }
}
