// Screenshots of the pages docs/tools/slack_screenshot.py renders: the element #shot of each page, taken with
// Debian's chromium driven by playwright-core (from web/node_modules, as the browser journeys use it).
//
//   node docs/tools/slack_screenshot.mjs page.html out.png [page2.html out2.png ...]
//
// The pages are local files with everything inline; any other request is refused, so nothing leaves the host.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(ROOT, "web", "package.json"))("playwright-core");

const pairs = process.argv.slice(2);
if (pairs.length === 0 || pairs.length % 2 !== 0) {
  console.error("usage: node slack_screenshot.mjs page.html out.png [page.html out.png ...]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 820, height: 600 }, deviceScaleFactor: 2 });
  await context.route("**/*", (route) =>
    route.request().url().startsWith("file:") ? route.continue() : route.abort(),
  );
  const page = await context.newPage();
  for (let i = 0; i < pairs.length; i += 2) {
    await page.goto(pathToFileURL(resolve(pairs[i])).href);
    await page.evaluate(() => document.fonts.ready);
    await page.locator("#shot").screenshot({ path: resolve(pairs[i + 1]) });
    console.log(`wrote ${pairs[i + 1]}`);
  }
} finally {
  await browser.close();
}
