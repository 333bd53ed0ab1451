/**
 * Why a test that needs a program which is not installed is skipped.
 *
 * @module
 */

/**
 * `missing` if `command` is not installed, else `null`: why a test that
 * runs it is skipped.
 */
export async function notInstalled(
  command: string,
  args: readonly string[],
  missing: string,
): Promise<string | null> {
  try {
    await new Deno.Command(command, {
      args: [...args],
      stdout: "null",
      stderr: "null",
    }).output();
    return null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return missing;
    throw error;
  }
}
