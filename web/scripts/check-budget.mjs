// Fails the build when the first load of the prompt library (the app's entry script, the library page's
// chunk and every chunk they import statically) is over the JavaScript budget, gzipped. Other pages load
// their own chunks when visited. Reads Vite's build manifest (dist/.vite/manifest.json).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_KB = Number(process.env.PROMPTOPS_WEB_BUDGET_KB ?? 300);
const dist = new URL("../dist/", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(dist, ".vite", "manifest.json"), "utf8"));

const files = new Set();
function add(key) {
  const chunk = manifest[key];
  if (!chunk || files.has(chunk.file)) return;
  files.add(chunk.file);
  for (const imported of chunk.imports ?? []) add(imported);
}
add("index.html");
add("src/pages/LibraryPage.tsx");

let total = 0;
for (const file of [...files].sort()) {
  const size = gzipSync(readFileSync(join(dist, file))).length;
  total += size;
  console.log(`${file}\t${(size / 1024).toFixed(1)} KB gzipped`);
}
console.log(`library page first load: ${(total / 1024).toFixed(1)} KB of JavaScript gzipped (budget ${BUDGET_KB} KB)`);
if (total > BUDGET_KB * 1024) {
  console.error("over budget: split a page or drop a dependency");
  process.exit(1);
}
