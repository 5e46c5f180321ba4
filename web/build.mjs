// Bundles web/src/*.ts (and site.css) into src/retake/server/web/static/dist/ with esbuild.
// `node web/build.mjs` builds once (minified, with source maps); `--watch` rebuilds on change.
import { build, context } from "esbuild";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "src", "retake", "server", "web", "static", "dist");
const watch = process.argv.includes("--watch");

const options = {
  entryPoints: {
    home: join(here, "src", "home.ts"),
    watch: join(here, "src", "watch.ts"),
    recordings: join(here, "src", "recordings.ts"),
    site: join(here, "src", "site.css"),
    economy: join(here, "src", "economy.css"), // after site.css: the account menu, token, trade and tip panels
  },
  outdir,
  bundle: true,
  format: "esm",
  splitting: true, // hls.js is loaded only when a page needs it
  chunkNames: "chunks/[name]-[hash]",
  target: ["es2020", "chrome90", "firefox90", "safari14"],
  minify: !watch,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "info",
};

rmSync(outdir, { recursive: true, force: true });
if (watch) {
  const ctx = await context(options);
  await ctx.watch();
} else {
  await build(options);
}
