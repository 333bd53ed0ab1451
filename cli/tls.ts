/**
 * TLS for the echo servers and the client: credentials from the programs'
 * flags, and, when a client cannot connect, a one-line account of why.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { checkServerIdentity, connect, type PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { readFlagFile, UsageError } from "./flags.ts";

/** The files of the TLS flags, as given. */
export interface TlsFiles {
  /** The CA that signed the other side's certificate. */
  readonly ca?: string;
  /** This side's certificate chain (PEM). */
  readonly cert?: string;
  /** Its private key (PEM). */
  readonly key?: string;
}

/** @throws {UsageError} if only one of a certificate and its key is given. */
function assertPaired(cert: string | undefined, key: string | undefined) {
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
}

/** Reads a flag's file as a Buffer, or `null` for a flag not given. */
function read(flag: string, path: string | undefined): Buffer | null {
  return path === undefined ? null : Buffer.from(readFlagFile(flag, path));
}

/**
 * Asserts that every backend of `addresses` (`host:port`) is given by a
 * host name: over TLS each backend is verified by the name it is given by,
 * and Deno cannot verify a certificate for an IP address.
 *
 * @throws {UsageError} naming the first backend given by an IP address.
 */
export function assertNamedForTls(addresses: readonly string[]): void {
  const byIp = addresses.find((address) =>
    isIP(grpc.experimental.splitHostPort(address)?.host ?? "") !== 0
  );
  if (byIp !== undefined) {
    throw new UsageError(
      `--addrs: ${byIp} is an IP address; over TLS each backend is verified by the host name it is given by, and Deno cannot verify an IP address: give a name its certificate holds, such as localhost`,
    );
  }
}

/**
 * The servers' credentials: plaintext without a certificate, TLS with one,
 * mutual TLS with a client CA (`ca`) as well.
 *
 * @throws {UsageError} for a flag without its partner; {@linkcode Error} for
 *   a file that cannot be read or used.
 */
export function serverCredentials(
  { ca, cert, key }: TlsFiles,
): grpc.ServerCredentials {
  assertPaired(cert, key);
  if (cert === undefined) {
    if (ca !== undefined) {
      throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc.ServerCredentials.createInsecure();
  }
  const pair = {
    cert_chain: read("tls-cert", cert)!,
    private_key: read("tls-key", key)!,
  };
  const clientCa = read("tls-client-ca", ca);
  try {
    // Without a client CA, grpc-js hands the TLS server the system's whole
    // CA bundle, and Deno 2.9.3's server then fails every handshake
    // ("wrong version number" at the client). No client certificate is
    // asked for then, so the server's own chain stands in, unused.
    return grpc.ServerCredentials.createSsl(
      clientCa ?? pair.cert_chain,
      [pair],
      clientCa !== null,
    );
  } catch (error) {
    throw new Error(`TLS: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The client's credentials: TLS trusting `ca` (the system's CAs without
 * it), presenting `cert` and `key` if given.
 *
 * @throws {UsageError} for a flag without its partner; {@linkcode Error} for
 *   a file that cannot be read or used.
 */
export function clientCredentials(
  { ca, cert, key }: TlsFiles,
): grpc.ChannelCredentials {
  assertPaired(cert, key);
  const files = {
    ca: read("tls-ca", ca),
    key: read("tls-key", key),
    cert: read("tls-cert", cert),
  };
  try {
    return grpc.credentials.createSsl(files.ca, files.key, files.cert);
  } catch (error) {
    throw new Error(`TLS: ${(error as Error).message}`, { cause: error });
  }
}

/** How long a diagnosis waits for a handshake. */
const HANDSHAKE_MS = 2_000;

/** The words of a diagnosis: the flags, and what to do about TLS. */
export interface TlsWords {
  /** The flag of the CA, as `--tls-ca`. */
  readonly ca: string;
  /** The flags of a client certificate, as `--tls-cert, --tls-key`. */
  readonly clientCert: string;
  /** What a plaintext client should do about a TLS server. */
  readonly speakTls: string;
  /** What a TLS client should ask of a plaintext server. */
  readonly serveTls: string;
}

/** The words for the echo servers and the client's `--tls-*` flags. */
const GRPC_TLS_WORDS: TlsWords = {
  ca: "--tls-ca",
  clientCert: "--tls-cert, --tls-key",
  speakTls: "give --tls-ca",
  serveTls: "is it started with --tls-cert and --tls-key?",
};

/**
 * Why a client could not connect to `address` (`host:port`), verifying its
 * certificate for `serverName`, in a few words, or `null` if a handshake of
 * its own finds nothing wrong. grpc-js reports a certificate problem in the
 * runtime's words, which on Deno do not say what is wrong ("unable to verify
 * the first certificate" for an expired certificate too); this handshake
 * looks at the certificate itself.
 *
 * @param tls The client's TLS files, or `null` for a plaintext client.
 * @param words The flags and advice the diagnosis names.
 */
function diagnose(
  address: string,
  serverName: string,
  tls: TlsFiles | null,
  words: TlsWords = GRPC_TLS_WORDS,
): Promise<string | null> {
  const { host, port } = grpc.experimental.splitHostPort(address) ?? {};
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      // TLS sends no IP address as a server name.
      servername: isIP(serverName) === 0 ? serverName : undefined,
      ca: read("tls-ca", tls?.ca) ?? undefined,
      cert: read("tls-cert", tls?.cert) ?? undefined,
      key: read("tls-key", tls?.key) ?? undefined,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
    }, () => {
      const found = tls === null
        ? `it speaks TLS, and this client does not: ${words.speakTls}`
        : certificateProblem(
          socket.getPeerCertificate(),
          serverName,
          socket,
          words,
        );
      socket.destroy();
      resolve(
        found ??
          (tls?.cert === undefined
            ? `its certificate is fine, but it refused this client: it may want a client certificate (mutual TLS: ${words.clientCert})`
            : null),
      );
    });
    socket.setTimeout(HANDSHAKE_MS, () => {
      socket.destroy();
      resolve(null);
    });
    socket.on("error", (error: Error) => {
      socket.destroy();
      resolve(tls === null ? null : notTls(error, words));
    });
  });
}

/**
 * Why a handshake failed, if as with a server that does not speak TLS: a
 * gRPC server answers the TLS hello with HTTP/2 bytes ("wrong version
 * number"); etcd, which tells its protocols apart by the first bytes,
 * closes the connection.
 */
function notTls(error: Error, words: TlsWords): string | null {
  if (/wrong version number|WRONG_VERSION/i.test(error.message)) {
    return `it does not speak TLS: ${words.serveTls}`;
  }
  if (/disconnected before secure TLS connection/.test(error.message)) {
    return `it closed the connection at the TLS handshake, as a server that does not speak TLS does: ${words.serveTls}`;
  }
  return null;
}

/** What is wrong with a server's certificate, or `null`. */
function certificateProblem(
  certificate: PeerCertificate,
  serverName: string,
  socket: { authorized: boolean },
  words: TlsWords,
): string | null {
  const now = Date.now();
  if (now > Date.parse(certificate.valid_to)) {
    return `its certificate expired on ${certificate.valid_to}`;
  }
  if (now < Date.parse(certificate.valid_from)) {
    return `its certificate is not valid before ${certificate.valid_from}`;
  }
  // Deno counts a name mismatch as unauthorized too, so the name comes first.
  const mismatch = checkServerIdentity(serverName, certificate);
  if (mismatch !== undefined) {
    return `its certificate is for ${
      certificate.subjectaltname ?? "another name"
    }, not ${serverName}`;
  }
  if (!socket.authorized) {
    return `its certificate is not signed by the CA of ${words.ca} (its issuer: ${
      Object.entries(certificate.issuer ?? {}).map(([k, v]) => `${k}=${v}`)
        .join(", ")
    })`;
  }
  return null;
}

/**
 * A server a diagnosis may try: how the line names it, and its `host:port`,
 * whose host its certificate is verified for.
 */
export interface Peer {
  readonly name: string;
  readonly address: string;
}

/**
 * `error`, or, if it says that no connection could be made and a handshake
 * of the program's own with one of `peers` finds why, that reason, naming
 * the peer.
 *
 * @param tls The program's TLS files, or `null` for a plaintext client.
 * @param words The flags and advice the reason names.
 */
export async function explainConnectFailure(
  error: Error,
  peers: readonly Peer[],
  tls: TlsFiles | null,
  words: TlsWords = GRPC_TLS_WORDS,
): Promise<Error> {
  if (!error.message.includes("No connection established")) return error;
  for (const { name, address } of peers) {
    const { host, port } = grpc.experimental.splitHostPort(address) ?? {};
    if (host === undefined || port === undefined) continue;
    const problem = await diagnose(address, host, tls, words);
    if (problem !== null) {
      return new Error(`${name}: ${problem}`, { cause: error });
    }
  }
  return error;
}
