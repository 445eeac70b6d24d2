// tsc does not emit .d.ts inputs: the generated API types go to dist/ next to the declarations that import them.
import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
copyFileSync(join(root, "src", "schema.d.ts"), join(root, "dist", "schema.d.ts"));
