/**
 * `deno task mutation`: Stryker plants bugs (mutants) in `balancer/` and the
 * flag readers, one at a time, and runs Deno's tests against each with its
 * command test runner. Each area's mutants face the tests of its concern,
 * the ones that need no etcd and no network namespaces, so that a run takes
 * minutes. Prints Stryker's report per area, then the score per area and
 * overall, and every surviving mutant. Arguments choose areas by a word of
 * their names (`deno task mutation health`). It writes `report.json` and
 * docs/testing.md's section made from it (`report.ts`); a run of some areas
 * replaces theirs in the last report.
 *
 * Stryker runs in place: it rewrites the files under test and puts them back
 * when it ends, also on Ctrl-C. After a hard kill, `git checkout balancer cli`
 * puts them back.
 *
 * @module
 */
import { Stryker } from "@stryker-mutator/core";
import CONFIG from "./stryker.config.json" with { type: "json" };
import { withEtcd } from "./etcd.ts";
import {
  type AreaScore,
  bySite,
  merged,
  type Reason,
  type Report,
  section,
  type Survivor,
  withSection,
} from "./report.ts";

/** Stryker's options, which the JSON's types are read more loosely than. */
type Options = NonNullable<ConstructorParameters<typeof Stryker>[0]>;

interface Area {
  readonly name: string;
  /** Stryker's `mutate` globs. */
  readonly mutate: readonly string[];
  /** The test files, fastest and most telling first: the run stops at the first failure. */
  readonly tests: readonly string[];
  /**
   * Whether its tests need an etcd: one is started for the area's whole run
   * and named to them in `CUSTOMLB_TEST_ETCD`, not started for each mutant.
   */
  readonly etcd?: boolean;
}

const AREAS: readonly Area[] = [
  {
    name: "flag readers",
    mutate: ["cli/flags.ts", "cli/client_flags.ts", "cli/server_flags.ts"],
    tests: ["flags_test.ts"],
  },
  {
    name: "policies, block, metrics and config check",
    mutate: [
      "balancer/*.ts",
      "!balancer/mod.ts",
      "!balancer/health_check.ts",
      "!balancer/ring_hash.ts",
    ],
    tests: [
      "custom_round_robin_test.ts",
      "endpoint_sharding_test.ts",
      "metrics_test.ts",
      "service_config_test.ts",
      "least_request_test.ts",
      "integration_test.ts",
      "define_policy_test.ts",
      "connection_metrics_test.ts",
    ],
  },
  {
    name: "ring hash",
    mutate: ["balancer/ring_hash.ts"],
    // The end-to-end test, five server processes, is left to the suite.
    tests: ["ring_hash_test.ts"],
  },
  {
    name: "health checking",
    mutate: ["balancer/health_check.ts"],
    // The helper decorator is run by the policy's health-checking tests.
    tests: ["health_check_test.ts", "custom_round_robin_test.ts"],
  },
  {
    name: "etcd resolver",
    mutate: ["balancer/discovery/etcd_resolver.ts"],
    tests: ["etcd_resolver_test.ts"],
    etcd: true,
  },
  {
    name: "DNS health checking and xDS",
    mutate: [
      "balancer/discovery/dns_health_check.ts",
      "balancer/discovery/xds.ts",
    ],
    // dnsmasq on loopback, started by the test (in well under a second);
    // the xDS control plane is the tests' in-process fixture.
    tests: [
      "dns_health_check_test.ts",
      "registration_test.ts",
      "xds_setup_test.ts",
      "xds_test.ts",
    ],
  },
  {
    name: "discovery without etcd, DNS and xDS",
    mutate: [
      "balancer/discovery/*.ts",
      "!balancer/discovery/etcd_resolver.ts",
      "!balancer/discovery/dns_health_check.ts",
      "!balancer/discovery/xds.ts",
    ],
    tests: [
      "etcd_naming_test.ts",
      "manual_resolver_test.ts",
      "dns_resolver_test.ts",
      "server_names_test.ts",
      // connectEtcd's client, against the area's etcd.
      "etcd_resolver_test.ts",
    ],
    etcd: true,
  },
];

/** Stryker's result for one mutant, as far as this summary reads it. */
interface Mutant {
  readonly fileName: string;
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly location: {
    readonly start: { readonly line: number; readonly column: number };
  };
}

const DETECTED = new Set(["Killed", "Timeout"]);
const NOT_COUNTED = new Set(["Ignored", "CompileError", "RuntimeError"]);
const survived = (mutant: Mutant) =>
  !NOT_COUNTED.has(mutant.status) && !DETECTED.has(mutant.status);

async function runArea(area: Area): Promise<Mutant[]> {
  if (!area.etcd) return await runStryker(area);
  return await withEtcd(async (endpoint) => {
    Deno.env.set("CUSTOMLB_TEST_ETCD", endpoint);
    try {
      return await runStryker(area);
    } finally {
      Deno.env.delete("CUSTOMLB_TEST_ETCD");
    }
  });
}

async function runStryker(area: Area): Promise<Mutant[]> {
  const tests = area.tests.map((file) => `tests/${file}`).join(" ");
  const stryker = new Stryker({
    ...CONFIG as Options,
    mutate: [...area.mutate],
    commandRunner: { command: `${CONFIG.commandRunner.command} ${tests}` },
  });
  return (await stryker.runMutationTest()) as Mutant[];
}

function score(mutants: readonly Mutant[]): string {
  const counted = mutants.filter((m) => !NOT_COUNTED.has(m.status));
  const detected = counted.filter((m) => DETECTED.has(m.status)).length;
  const percent = counted.length === 0 ? 100 : 100 * detected / counted.length;
  return `${percent.toFixed(1)} % (${detected} of ${counted.length} killed)`;
}

function survivorLine(mutant: Mutant): string {
  const change = (mutant.replacement ?? "").replace(/\s+/g, " ").slice(0, 80);
  return `${mutant.fileName}:${mutant.location.start.line} ${mutant.mutatorName}: ${change}`;
}

function printSummary(results: ReadonlyMap<Area, Mutant[]>): void {
  const all = [...results.values()].flat();
  const root = Deno.cwd() + "/";
  console.log("\nmutation score");
  for (const [area, mutants] of results) {
    console.log(`  ${area.name}: ${score(mutants)}`);
  }
  const inBalancer = all.filter((m) =>
    m.fileName.replace(root, "").startsWith("balancer/")
  );
  console.log(`  balancer/: ${score(inBalancer)}`);
  console.log(`  all: ${score(all)}`);
  const survivors = all.filter(survived);
  console.log(`\nsurvivors: ${survivors.length}`);
  for (const mutant of survivors) {
    console.log(
      `  ${
        survivorLine({ ...mutant, fileName: mutant.fileName.replace(root, "") })
      }`,
    );
  }
}

/** The areas named by `args` (a word of each area's name), or all of them. */
function chosen(args: readonly string[]): Area[] {
  const areas = AREAS.filter((area) =>
    args.length === 0 || args.some((word) => area.name.includes(word))
  );
  if (areas.length === 0) {
    throw new Error(
      `no area matches ${args.join(" ")}: ${
        AREAS.map(({ name }) => name).join("; ")
      }`,
    );
  }
  return areas;
}

/** The run's report: scores by area and file, survivors with their lines. */
async function report(results: ReadonlyMap<Area, Mutant[]>): Promise<Report> {
  const root = Deno.cwd() + "/";
  const areas: AreaScore[] = [...results].map(([area, mutants]) => {
    const byFile = Map.groupBy(mutants, (m) => m.fileName.replace(root, ""));
    const files = [...byFile].sort(([a], [b]) => a < b ? -1 : 1).map((
      [file, ofFile],
    ) => {
      const counted = ofFile.filter((m) => !NOT_COUNTED.has(m.status));
      const killed = counted.filter((m) => DETECTED.has(m.status)).length;
      return { file, killed, counted: counted.length };
    });
    return { name: area.name, files };
  });
  const survivors: Survivor[] = [];
  for (const mutant of [...results.values()].flat().filter(survived)) {
    const file = mutant.fileName.replace(root, "");
    const line = mutant.location.start.line;
    const text = await Deno.readTextFile(file);
    survivors.push({
      file,
      line,
      column: mutant.location.start.column,
      mutator: mutant.mutatorName,
      replacement: mutant.replacement ?? "",
      source: text.split("\n")[line - 1].trim(),
    });
  }
  survivors.sort(bySite);
  return { areas, survivors };
}

/**
 * Writes report.json and docs/testing.md's section made from it; a run of
 * some areas replaces theirs in the last report.
 */
async function writeReport(
  results: ReadonlyMap<Area, Mutant[]>,
  every: boolean,
) {
  const here = new URL("./", import.meta.url);
  const run = await report(results);
  const made = every ? run : merged(
    JSON.parse(await Deno.readTextFile(new URL("report.json", here))),
    run,
  );
  await Deno.writeTextFile(
    new URL("report.json", here),
    JSON.stringify(made, null, 2) + "\n",
  );
  const reasons: Reason[] = JSON.parse(
    await Deno.readTextFile(new URL("reasons.json", here)),
  );
  const page = new URL("../../docs/testing.md", here);
  await Deno.writeTextFile(
    page,
    withSection(await Deno.readTextFile(page), section(made, reasons)),
  );
  await new Deno.Command("deno", { args: ["fmt", "-q", page.pathname] })
    .output();
  console.log("\nwritten: tests/mutation/report.json, docs/testing.md");
}

async function main(): Promise<void> {
  const results = new Map<Area, Mutant[]>();
  const areas = chosen(Deno.args);
  for (const area of areas) {
    console.log(`\n== ${area.name}: ${area.mutate.join(" ")}`);
    results.set(area, await runArea(area));
  }
  printSummary(results);
  await writeReport(results, areas.length === AREAS.length);
}

if (import.meta.main) await main();
