/**
 * The code samples of README.md and docs/*.md run, or say beside them what
 * runs them or why nothing can. `deno task check` type-checks the TypeScript
 * blocks and the JavaScript ones that start with `// @ts-check`; the PromQL
 * goes to a real Prometheus in prometheus_test.ts; here, each service config
 * goes through `checkServiceConfig`, each `deno task` named in a shell block
 * must exist, and the programs must take its flags. Any other sample carries
 * an HTML comment just above it: `<!-- run by … -->` or `<!-- not run: … -->`.
 */
import assert from "node:assert/strict";
import {
  checkServiceConfig,
  registerCustomRoundRobin,
  registerLeastRequest,
  registerRingHash,
} from "../balancer/mod.ts";
import { readClientFlags } from "../cli/client_flags.ts";
import { readServerFlags } from "../cli/server_flags.ts";

const ROOT = new URL("..", import.meta.url);

/** A fenced block of a page, with the comment just above it, if any. */
interface Sample {
  readonly where: string;
  readonly lang: string;
  readonly body: string;
  readonly note: string | null;
}

function pages(): string[] {
  const docs = [...Deno.readDirSync(new URL("docs/", ROOT))]
    .filter(({ name }) => name.endsWith(".md"))
    .map(({ name }) => `docs/${name}`);
  return ["README.md", ...docs.sort()];
}

async function samples(): Promise<Sample[]> {
  const found: Sample[] = [];
  for (const page of pages()) {
    const text = await Deno.readTextFile(new URL(page, ROOT));
    const fences = /(?:<!--([^\n]*)-->\n\n?)?^```(\w+)\n([\s\S]*?)^```$/gm;
    for (const match of text.matchAll(fences)) {
      const line = text.slice(0, match.index).split("\n").length;
      found.push({
        where: `${page}:${line}`,
        lang: match[2],
        body: match[3],
        note: match[1]?.trim() ?? null,
      });
    }
  }
  return found;
}

/** The policy docs/writing_a_policy.md writes, registered as a user would. */
async function registerDocPolicy(): Promise<void> {
  const page = await Deno.readTextFile(
    new URL("docs/writing_a_policy.md", ROOT),
  );
  const code = page.match(/```ts\n([\s\S]*?)```/)?.[1];
  assert.ok(code, "a ts block in docs/writing_a_policy.md");
  const module = await import(
    `data:application/typescript,${encodeURIComponent(code)}`
  );
  module.leastInFlight.register();
}

Deno.test("docs: every service config in the docs is one that checkServiceConfig accepts", async () => {
  registerCustomRoundRobin();
  registerLeastRequest();
  registerRingHash();
  await registerDocPolicy();
  const configs = (await samples()).filter(({ lang, body }) =>
    lang === "json" && body.includes('"loadBalancingConfig"')
  );
  assert.ok(configs.length >= 6, `${configs.length} service configs`);
  for (const { where, body } of configs) {
    assert.doesNotThrow(() => checkServiceConfig(JSON.parse(body)), where);
  }
});

Deno.test("docs: every other sample is type-checked, or says what runs it or why nothing can", async () => {
  for (const { where, lang, body, note } of await samples()) {
    const checked = lang === "ts" || lang === "sh" || lang === "promql" ||
      (lang === "js" && body.startsWith("// @ts-check\n")) ||
      (lang === "json" && body.includes('"loadBalancingConfig"'));
    if (checked) continue;
    assert.ok(note !== null, `${where}: a ${lang} sample with no note above`);
    assert.match(note, /^(run by |not run: |conformance: |composing: )/, where);
  }
});

/** Each `deno task NAME ARGS` of a shell block, as words. */
function taskCommands(body: string): string[][] {
  const joined = body.replace(/\\\n\s*/g, " ");
  return joined.split("\n").flatMap((line) =>
    line.replace(/#.*$/, "").split(/&&|;|\||&$/).flatMap((command) => {
      const words = command.trim().split(/\s+/);
      const at = words.indexOf("task");
      return at > 0 && words[at - 1] === "deno"
        ? [words.slice(at + 1).filter((word) => word !== "&")]
        : [];
    })
  );
}

const FLAG_READERS: Record<string, (args: string[]) => unknown> = {
  server: readServerFlags,
  client: readClientFlags,
  "client:dns": readClientFlags,
  "client:remote": readClientFlags,
  demo: readClientFlags,
};

Deno.test("docs: every deno task in a shell block exists, and the programs take its flags", async () => {
  const { tasks } = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  let commands = 0;
  for (const { where, lang, body } of await samples()) {
    if (lang !== "sh") continue;
    for (const [name, ...args] of taskCommands(body)) {
      commands++;
      assert.ok(name in tasks, `${where}: no task ${name}`);
      const read = FLAG_READERS[name];
      if (read) {
        const unquoted = args.map((arg) => arg.replace(/^"(.*)"$/, "$1"));
        assert.doesNotThrow(() => read(unquoted), `${where}: ${name} ${args}`);
      }
    }
  }
  assert.ok(commands >= 40, `${commands} task commands`);
});
