/**
 * How both programs reach a secured etcd: TLS from `--etcd-ca`,
 * `--etcd-cert` and `--etcd-key`, an etcd user from `ETCD_USERNAME` and
 * `ETCD_PASSWORD`, and, when etcd cannot be reached over TLS, a one-line
 * account of why.
 *
 * @module
 */
import { type EtcdAccess } from "../balancer/mod.ts";
import { etcdEndpointsUseTls } from "../balancer/etcd.ts";
import { readFlagFile, UsageError } from "./flags.ts";
import { explainConnectFailure, type TlsFiles, type TlsWords } from "./tls.ts";

/** The etcd TLS flags, as both programs' option tables declare them. */
export const ETCD_TLS_OPTIONS = {
  "etcd-ca": { type: "string" },
  "etcd-cert": { type: "string" },
  "etcd-key": { type: "string" },
} as const;

/** Their names, for a program that refuses them where etcd is not used. */
export const ETCD_TLS_FLAGS = Object.keys(ETCD_TLS_OPTIONS) as EtcdTlsFlag[];

type EtcdTlsFlag = keyof typeof ETCD_TLS_OPTIONS;

/** The etcd TLS flags' files, as given. */
export type EtcdTlsFlags = { readonly [F in EtcdTlsFlag]?: string };

/** What the programs hand the etcd client, and the files, to explain with. */
export interface EtcdSettings {
  readonly access: EtcdAccess;
  /** The TLS files as given, or `null` for plaintext. */
  readonly tls: TlsFiles | null;
}

const ETCD_TLS_WORDS: TlsWords = {
  ca: "--etcd-ca",
  clientCert: "--etcd-cert, --etcd-key",
  speakTls: "give https:// URLs",
  serveTls: "give http:// URLs, or serve TLS (etcd's --cert-file, --key-file)",
};

/**
 * Reads the etcd TLS flags and the user from the environment. The password
 * comes from `ETCD_PASSWORD`, never a flag: every user of the machine can
 * read a process's flags.
 *
 * @throws {UsageError} for a TLS flag with `http://` URLs, a certificate
 *   without its key, or a user name without a password; {@linkcode Error}
 *   for a file that cannot be read.
 */
export function readEtcdSettings(
  flags: EtcdTlsFlags,
  endpoints: readonly string[],
): EtcdSettings {
  const files = {
    ca: flags["etcd-ca"],
    cert: flags["etcd-cert"],
    key: flags["etcd-key"],
  };
  const given = Object.values(files).some((file) => file !== undefined);
  if (given && !etcdEndpointsUseTls(endpoints)) {
    throw new UsageError(
      "--etcd-ca, --etcd-cert and --etcd-key need https:// --etcd-endpoints",
    );
  }
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new UsageError("--etcd-cert and --etcd-key go together");
  }
  const read = (flag: EtcdTlsFlag) => {
    const path = flags[flag];
    return path === undefined ? undefined : readFlagFile(flag, path);
  };
  const tls = given
    ? { ca: read("etcd-ca"), cert: read("etcd-cert"), key: read("etcd-key") }
    : undefined;
  return { access: { tls, user: readEtcdUser() }, tls: given ? files : null };
}

/** The etcd user of `ETCD_USERNAME` and `ETCD_PASSWORD`, if set. */
function readEtcdUser(): EtcdAccess["user"] {
  const name = Deno.env.get("ETCD_USERNAME");
  const password = Deno.env.get("ETCD_PASSWORD");
  if ((name === undefined) !== (password === undefined)) {
    throw new UsageError("ETCD_USERNAME and ETCD_PASSWORD go together");
  }
  return name === undefined ? undefined : { name, password: password! };
}

/**
 * `error`, or, if it says that no connection to etcd could be made and a
 * handshake of the program's own with one of `endpoints` finds why, that
 * reason, naming the etcd URL.
 */
export function explainEtcdFailure(
  error: Error,
  endpoints: readonly string[],
  settings: EtcdSettings,
): Promise<Error> {
  return explainConnectFailure(
    error,
    endpoints.map((endpoint) => ({
      name: `etcd at ${endpoint}`,
      address: new URL(endpoint).host,
    })),
    settings.tls ?? (etcdEndpointsUseTls(endpoints) ? {} : null),
    ETCD_TLS_WORDS,
  );
}
