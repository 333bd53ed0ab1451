/**
 * The mutation report in docs/testing.md is the one the last full
 * `deno task mutation` run wrote, and still describes the code: its
 * survivors add up to its scores, and each survivor's line still holds the
 * source the run saw.
 */
import assert from "node:assert/strict";
import {
  type Reason,
  reasonFor,
  type Report,
  section,
  SECTION_END,
  SECTION_START,
} from "./mutation/report.ts";

const ROOT = new URL("..", import.meta.url);

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(path, ROOT)));
}

const report = await readJson<Report>("tests/mutation/report.json");
const reasons = await readJson<Reason[]>("tests/mutation/reasons.json");

/** Markdown as `deno fmt` may lay it out: whitespace and rules collapsed. */
function normalized(markdown: string): string {
  return markdown.replace(/-{3,}/g, "---").replace(/\s+/g, " ").trim();
}

Deno.test("mutation report: docs/testing.md's section is the one report.json and reasons.json make", async () => {
  const page = await Deno.readTextFile(new URL("docs/testing.md", ROOT));
  const start = page.indexOf(SECTION_START);
  const end = page.indexOf(SECTION_END);
  assert.ok(start >= 0 && end > start, "the generated section's markers");
  assert.equal(
    normalized(page.slice(start, end + SECTION_END.length)),
    normalized(section(report, reasons)),
  );
});

Deno.test("mutation report: the survivors add up to the scores", () => {
  const files = report.areas.flatMap((area) => area.files);
  const missed = files.reduce((sum, f) => sum + f.counted - f.killed, 0);
  assert.equal(report.survivors.length, missed);
  for (const { file, killed, counted } of files) {
    const here = report.survivors.filter((s) => s.file === file).length;
    assert.equal(here, counted - killed, file);
  }
});

Deno.test("mutation report: every survivor is still at its line, and every reason still matches a survivor", async () => {
  for (const { file, line, source } of report.survivors) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    assert.equal(
      text.split("\n")[line - 1]?.trim(),
      source,
      `${file}:${line} has moved: run deno task mutation again`,
    );
  }
  for (const reason of reasons) {
    assert.ok(
      report.survivors.some((s) => reasonFor(s, [reason]) !== undefined),
      `a reason for no survivor: ${reason.file} ${reason.source}`,
    );
  }
});
